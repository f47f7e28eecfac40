"""API errors are JSON with a human-readable ``detail``, and field errors beside it."""

from rest_framework.views import exception_handler


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for field, value in errors.items():
            message = _first_message(value)
            if message:
                return message if field == "non_field_errors" else f"{field}: {message}"
    elif isinstance(errors, list):
        for value in errors:
            message = _first_message(value)
            if message:
                return message
    elif errors:
        return str(errors)
    return ""


def api_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        summary = _first_message(response.data)
        response.data = {"detail": f"Invalid request: {summary}" if summary else "Invalid request.",
                         **response.data}  # fmt: skip
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": _first_message(response.data), "errors": response.data}
    return response

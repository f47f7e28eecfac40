"""API errors are JSON with a human-readable ``detail``, and field errors beside it."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as Refused
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import status
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler

# Deeper than any body the API takes (a step's notes are the deepest, at 4 levels), and far
# below the depth at which Python's JSON decoder gives up with a RecursionError.
MAX_JSON_DEPTH = 32


def _depth_exceeds(value, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending += [(child, depth + 1) for child in children]
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than MAX_JSON_DEPTH with a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON nested too deeply: at most {MAX_JSON_DEPTH} levels.") from exc
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(f"JSON nested too deeply: at most {MAX_JSON_DEPTH} levels.")
        return data


def _unreadable_body(exc) -> str | None:
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
        return f"The request body is larger than {size}, the most this API reads."
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return "The request has too many form fields or files."
    return None


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
    message = _unreadable_body(exc)
    if message:
        return Response({"detail": message}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Refused) and str(exc):
        # A service's refusal says why (DRF would answer a generic message): keep its words.
        exc = PermissionDenied(str(exc))
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        summary = _first_message(response.data)
        response.data = {"detail": f"Invalid request: {summary}" if summary else "Invalid request.",
                         **response.data}  # fmt: skip
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": _first_message(response.data), "errors": response.data}
    return response

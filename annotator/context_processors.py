from .roles import Role, user_roles


def roles(request):
    held = user_roles(request.user) if hasattr(request, "user") else set()
    return {
        "is_annotator": Role.ANNOTATOR in held,
        "is_reviewer": Role.REVIEWER in held,
        "is_admin": Role.ADMIN in held,
    }

"""The three roles and the one set of checks that pages and the API both use."""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


class Role(StrEnum):
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    ADMIN = "admin"


def user_roles(user) -> set[Role]:
    """The roles a user holds; superusers count as admins. Cached on the user object."""
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_journey_roles", None)
    if cached is None:
        names = user.groups.filter(name__in=list(Role)).values_list("name", flat=True)
        cached = {Role(name) for name in names}
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._journey_roles = cached
    return cached


def has_role(user, *roles: Role) -> bool:
    return bool(user_roles(user) & set(roles))


class OwnAnnotation(PermissionDenied):
    """Nobody reviews, or asks for more expansions of, their own annotation (the admin may give
    one person both the annotator and the reviewer role): a refusal of who asks, not of what.
    Pages and DRF both answer a PermissionDenied with 403 and its message."""


def refuse_own_annotation(user, *, annotator_id: int, doing: str) -> None:
    """Raise OwnAnnotation when ``user`` wrote the annotation; ``doing`` completes "You cannot
    ... your own annotation." """
    if user is not None and annotator_id == user.pk:
        raise OwnAnnotation(f"You cannot {doing} your own annotation.")


def role_required(*roles: Role) -> Callable:
    """View decorator: 403 unless the logged-in user holds one of ``roles``."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied("Your role does not give access to this page.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def HasRole(*roles: Role) -> type[BasePermission]:  # noqa: N802 - reads as a permission class
    """DRF permission class built from the same rule as ``role_required``."""

    class _HasRole(BasePermission):
        message = "Your role does not give access to this resource."

        def has_permission(self, request, view):
            return has_role(request.user, *roles)

    _HasRole.__name__ = "HasRole_" + "_".join(roles)
    return _HasRole

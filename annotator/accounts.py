"""Creating users with a role and changing them, for the command line, the demo and the API."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .roles import Role


def _role_set(user, role: Role) -> None:
    """One role per user; admins also get the Django admin (staff and superuser)."""
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save()
    user.groups.set([Group.objects.get_or_create(name=role)[0]])
    user._journey_roles = None  # recompute the cached roles


@transaction.atomic
def user_create_or_update(*, username: str, role: Role, password: str):
    """Create the user, or reset an existing one's password and role."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    _role_set(user, role)
    return user


@transaction.atomic
def user_update(
    *, user, role: Role | None = None, password: str | None = None, is_active: bool | None = None
):
    """Change what is given of a user's role, password and whether they can log in."""
    if password is not None:
        user.set_password(password)
    if is_active is not None:
        user.is_active = is_active
    if role is not None:
        _role_set(user, role)
    else:
        user.save()
    return user

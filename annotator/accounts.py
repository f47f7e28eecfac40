"""Creating users with a role, for the command line and the demo."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .roles import Role


@transaction.atomic
def user_create_or_update(*, username: str, role: Role, password: str):
    """Create the user, or reset an existing one's password and role."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save()
    user.groups.set([Group.objects.get_or_create(name=role)[0]])
    return user

import getpass

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotator.accounts import user_create_or_update
from annotator.roles import Role


class Command(BaseCommand):
    help = "Create a user with a role (or reset an existing user's password and role)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--password", help="Prompted for when not given.")

    def handle(self, *args, username, role, password, **options):
        if password is None:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The two passwords differ.")
        candidate = get_user_model()(username=username)
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise CommandError("Password rejected: " + " ".join(exc.messages)) from exc
        user_create_or_update(username=username, role=Role(role), password=password)
        self.stdout.write(self.style.SUCCESS(f"User '{username}' has the role {role}."))

"""Admin-only API: users and their role."""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, viewsets

from .accounts import user_create_or_update, user_update
from .roles import HasRole, Role, user_roles


class UserSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=[r.value for r in Role], write_only=True)
    roles = serializers.SerializerMethodField()
    password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}
    )

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "is_active", "role", "roles", "password", "date_joined"]
        read_only_fields = ["id", "date_joined"]

    def get_roles(self, user) -> list[str]:
        return sorted(user_roles(user))

    def validate(self, attrs):
        password = attrs.get("password")
        if self.instance is None and not password:
            raise serializers.ValidationError({"password": "A new user needs a password."})
        if password:
            try:
                validate_password(password)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs

    def create(self, validated):
        return user_create_or_update(username=validated["username"], role=Role(validated["role"]),
                                     password=validated["password"])  # fmt: skip

    def update(self, user, validated):
        role = Role(validated["role"]) if "role" in validated else None
        return user_update(user=user, role=role, password=validated.get("password"),
                           is_active=validated.get("is_active"))  # fmt: skip


class UserViewSet(viewsets.ModelViewSet):
    """Users and roles (admins)."""

    serializer_class = UserSerializer
    permission_classes = [HasRole(Role.ADMIN)]
    queryset = get_user_model().objects.order_by("username").prefetch_related("groups")
    http_method_names = ["get", "post", "patch", "head", "options"]

"""Admin-only API: LLM endpoints and prompt versions."""

from rest_framework import mixins, serializers, viewsets

from annotator.roles import HasRole, Role

from .endpoints import endpoint_save
from .models import LLMEndpoint, PromptVersion
from .prompts import prompt_problems, prompt_version_create


class LLMEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = LLMEndpoint
        fields = ["id", "name", "base_url", "model", "api_key_env", "temperature", "top_p",
                  "max_tokens", "max_in_flight", "requests_per_minute", "tokens_per_minute",
                  "price_input_per_million", "price_output_per_million", "timeout_seconds",
                  "use_batches", "batch_discount_percent",
                  "is_simulated", "is_active", "is_default", "created_at"]  # fmt: skip
        read_only_fields = ["id", "created_at"]
        # Marking an endpoint the default unmarks the other one (endpoint_save).
        extra_kwargs = {"is_default": {"validators": []}}


class LLMEndpointViewSet(viewsets.ModelViewSet):
    """LLM endpoints. The key stays in the environment: only its variable's name is here."""

    serializer_class = LLMEndpointSerializer
    permission_classes = [HasRole(Role.ADMIN)]
    queryset = LLMEndpoint.objects.order_by("name")
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer):
        serializer.instance = endpoint_save(endpoint=LLMEndpoint(**serializer.validated_data))

    def perform_update(self, serializer):
        endpoint = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(endpoint, field, value)
        endpoint_save(endpoint=endpoint)


class PromptVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptVersion
        fields = ["id", "name", "version", "system", "granularity", "stepwise_pause",
                  "explorer_perspective", "invariants", "target_tokens_min", "target_tokens_max",
                  "content_hash", "is_active", "created_at"]  # fmt: skip
        read_only_fields = ["id", "version", "content_hash", "created_at"]
        # Activating a version deactivates the other one (prompt_activate).
        extra_kwargs = {"is_active": {"validators": []}}

    def validate(self, data):
        problems = prompt_problems(**{field: data.get(field, "") for field in
                                      PromptVersion.CONTENT_FIELDS})  # fmt: skip
        if problems:
            raise serializers.ValidationError(problems)
        return data


class PromptVersionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):  # fmt: skip
    """Prompt versions are immutable: posting creates the next version of that name, which
    becomes the active one (and the only one) with ``is_active: true``."""

    serializer_class = PromptVersionSerializer
    permission_classes = [HasRole(Role.ADMIN)]
    queryset = PromptVersion.objects.order_by("name", "-version")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        activate = data.pop("is_active", False)
        serializer.instance = prompt_version_create(activate=activate, **data)

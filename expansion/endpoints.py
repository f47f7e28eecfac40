"""LLM endpoints: which one expands submissions, and the one-default rule."""

from django.conf import settings
from django.db import transaction

from .models import LLMEndpoint

# The fields of the endpoint LLM_BASE_URL and LLM_MODEL describe that follow the environment.
ENVIRONMENT_FIELDS = ("base_url", "model", "api_key_env", "is_simulated")


def _default_choice() -> LLMEndpoint:
    """The rule for where submissions are expanded: the endpoint an admin marked as the
    default (if it is active), else the one LLM_BASE_URL / LLM_MODEL describe, else the
    simulated one. The latter two come unsaved when they are not stored yet."""
    marked = LLMEndpoint.objects.filter(is_default=True, is_active=True).first()
    if marked is not None:
        return marked
    if settings.LLM_BASE_URL and settings.LLM_MODEL:
        return LLMEndpoint(name="default", base_url=settings.LLM_BASE_URL,
                           model=settings.LLM_MODEL, api_key_env=settings.LLM_API_KEY_ENV,
                           is_simulated=False)  # fmt: skip
    return LLMEndpoint(name="simulated", base_url=settings.LLM_SIMULATOR_URL,
                       model="simulated-journey", is_simulated=True, max_in_flight=32)  # fmt: skip


def endpoint_default() -> LLMEndpoint:
    """Where submissions are expanded (see _default_choice).

    Reads only, once the endpoint is stored: the environment's endpoint is created on first
    use, and changed only when the environment no longer says what it stores.
    """
    choice = _default_choice()
    if choice.pk is not None:
        return choice
    described = {field: getattr(choice, field) for field in ENVIRONMENT_FIELDS}
    endpoint, created = LLMEndpoint.objects.get_or_create(
        name=choice.name, defaults={**described, "max_in_flight": choice.max_in_flight}
    )
    if created or choice.is_simulated:
        return endpoint  # the simulated one stays as an admin left it
    changed = [field for field, value in described.items() if getattr(endpoint, field) != value]
    if changed:  # LLM_BASE_URL or LLM_MODEL changed since it was stored
        for field in changed:
            setattr(endpoint, field, described[field])
        endpoint.save(update_fields=changed)
    return endpoint


def endpoint_default_choice() -> LLMEndpoint:
    """The endpoint submissions are expanded on, without storing any (see _default_choice)."""
    return _default_choice()


@transaction.atomic
def endpoint_save(*, endpoint: LLMEndpoint) -> LLMEndpoint:
    """Store an endpoint. Marking it the default unmarks the one that was (one at most, which
    the constraint one_default_endpoint holds in the database too)."""
    if endpoint.is_default:
        LLMEndpoint.objects.filter(is_default=True).exclude(pk=endpoint.pk).update(is_default=False)
    endpoint.save()
    return endpoint

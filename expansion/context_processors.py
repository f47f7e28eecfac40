from django.conf import settings

from .models import LLMEndpoint


def default_is_simulated() -> bool:
    """Whether submissions are expanded by the simulated endpoint (see endpoint_default)."""
    marked = LLMEndpoint.marked_default().values_list("is_simulated", flat=True).first()
    if marked is not None:
        return marked
    return not (settings.LLM_BASE_URL and settings.LLM_MODEL)


def llm_mode(request):
    """Every page says so when traces come from the simulated endpoint (asked only by the
    pages that show it: templates call the function)."""
    return {"llm_simulated": default_is_simulated}

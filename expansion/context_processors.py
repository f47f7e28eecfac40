from django.conf import settings

from .endpoints import endpoint_default_choice


def llm_mode(request):
    """Every page says so when traces come from the simulated endpoint, and under DEBUG (the
    demo) which endpoint they come from otherwise, e.g. the local model of
    ``make demo LLM=local`` (asked only by the pages that show it: templates call it)."""
    return {"llm_default": endpoint_default_choice, "llm_name_it": settings.DEBUG}

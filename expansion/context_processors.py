from django.conf import settings


def llm_mode(request):
    """Every page says so when traces come from the simulated endpoint."""
    return {"llm_simulated": not (settings.LLM_BASE_URL and settings.LLM_MODEL)}

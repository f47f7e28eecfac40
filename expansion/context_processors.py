from .endpoints import endpoint_default_is_simulated


def llm_mode(request):
    """Every page says so when traces come from the simulated endpoint (asked only by the
    pages that show it: templates call the function)."""
    return {"llm_simulated": endpoint_default_is_simulated}

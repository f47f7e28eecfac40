"""Login with a limit on failed attempts per client address and per username."""

from django.contrib.auth.views import LoginView
from django.core.cache import cache

from config.security import client_address

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60


def _keys(request) -> list[str]:
    address = client_address(request)
    username = (request.POST.get("username") or "").strip().lower()[:150]
    return [f"login-failures:ip:{address}", f"login-failures:user:{username}"]


class RateLimitedLoginView(LoginView):
    def post(self, request, *args, **kwargs):
        if any((cache.get(key) or 0) >= MAX_FAILURES for key in _keys(request)):
            form = self.get_form()
            form.add_error(None, "Too many failed attempts. Wait 15 minutes and try again.")
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        for key in _keys(self.request):
            cache.add(key, 0, WINDOW_SECONDS)
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, WINDOW_SECONDS)
        return super().form_invalid(form)

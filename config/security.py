from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired

# KaTeX sets inline style attributes on the formulas it renders, hence 'unsafe-inline' for
# styles only; scripts come from our own origin and nothing else.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs a logged-in user; the API answers for itself.

    API views authenticate with tokens as well as sessions, which only Django REST
    framework sees, and they answer 401/403 as JSON rather than redirecting to the login
    page, so the middleware leaves them to the framework's default IsAuthenticated. The
    browsable docs are a page for people and redirect like every other page.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        path = request.path_info
        if path.startswith("/api/docs/"):
            # DRF marks its views login_not_required; the docs page is still a page.
            if not request.user.is_authenticated:
                return self.handle_no_permission(request, view_func)
            return None
        if path.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind a trusted proxy (TRUST_X_FORWARDED_FOR)
    the address that proxy appended last to X-Forwarded-For. Earlier entries are the
    client's own word and never trusted. DRF's throttles follow the same rule (NUM_PROXIES)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.TRUST_X_FORWARDED_FOR and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "unknown")

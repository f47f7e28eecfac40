"""The interface language: the user's own choice, else the browser's, else English.

Django's LocaleMiddleware picks the language from the language cookie or the browser's
Accept-Language before anyone is authenticated; UserLanguageMiddleware, after
AuthenticationMiddleware, then switches to the language a logged-in user chose, so the
choice follows the user to every browser and device.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}


def user_language(user) -> str | None:
    """The language the user chose, or None to follow the browser."""
    if not user.is_authenticated:
        return None
    from annotator.models import UserLanguage

    choice = UserLanguage.objects.filter(user=user).values_list("language", flat=True).first()
    return choice if choice in LANGUAGE_CODES else None


SESSION_KEY = "interface_language"


class UserLanguageMiddleware:
    """Looks the user's choice up once per session (login starts a new one) and keeps it
    in the session, so that a request such as an autosave costs no extra query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = None
        if request.user.is_authenticated:
            if SESSION_KEY not in request.session:
                request.session[SESSION_KEY] = user_language(request.user) or ""
            language = request.session[SESSION_KEY] or None
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


@login_not_required
@require_POST
def language_set(request):
    """Remember the picked language (for the user, and in a cookie for the login page)
    and go back to the page the picker was on."""
    language = request.POST.get("language", "")
    if language not in LANGUAGE_CODES:
        return HttpResponseBadRequest(
            _("Unknown language %(language)s: choose one of %(choices)s.")
            % {"language": language[:16], "choices": ", ".join(sorted(LANGUAGE_CODES))}
        )
    if request.user.is_authenticated:
        from annotator.models import UserLanguage

        UserLanguage.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[SESSION_KEY] = language
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    response = HttpResponseRedirect(next_url)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
    )
    return response


def remember_at_login(sender, request, user, **kwargs):
    """Put the user's language in the new session, so no page has to look it up."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user_language(user) or ""

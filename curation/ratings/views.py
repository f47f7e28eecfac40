"""The review page's step-rating mode: one step's rating saved at a time (htmx autosave)."""

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from annotator.roles import Role, role_required
from expansion.models import Trace

from ..models import StepRating
from . import services
from .api import RatingInputSerializer
from .markup import StepMarkup, rating_form


def _trace(trace_id: int) -> Trace:
    trace = Trace.objects.select_related("annotation").filter(pk=trace_id).first()
    if trace is None:
        raise Http404("No such trace.")
    return trace


def _rating_form(request, trace: Trace, number: int, *, rating, message="", kind="saved",
                 status=200):  # fmt: skip
    form = rating_form(request, number=number, rating=rating, message=message, kind=kind,
                       url=reverse("review-rate", args=[trace.pk, number]))  # fmt: skip
    return HttpResponse(form, status=status)


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def rate(request, trace_id: int, number: int):
    """Save the reviewer's rating of one step; the answer is the step's rating form.

    A stale save (another tab saved since) answers 409 with the stored rating in the form, so
    that the page shows what is kept. Without htmx the review page opens again.
    """
    trace = _trace(trace_id)
    form = RatingInputSerializer(data={
        "correctness": request.POST.get("correctness") or None,
        "faithfulness": request.POST.get("faithfulness", ""),
        "note": request.POST.get("note", "").replace("\r\n", "\n"),
        "version": request.POST.get("version", "0"),
    })  # fmt: skip
    stored = StepRating.objects.filter(
        step__trace=trace, step__number=number, step__retired_at__isnull=True, rater=request.user
    ).first()
    if not form.is_valid():
        message = " ".join(f"{field.capitalize()}: {' '.join(map(str, errors))}"
                           for field, errors in form.errors.items())  # fmt: skip
        return _refused(request, trace, number, stored, message, status=400)
    try:
        rating = services.step_rating_save(
            trace_id=trace.pk, number=number, rater=request.user, values=form.values(),
            version=form.validated_data["version"],
        )  # fmt: skip
    except services.NoSuchStep as exc:
        raise Http404(str(exc)) from exc
    except services.RaterRefused as exc:
        if request.htmx:  # said beside the step (static/js/step-ratings.js), not retried
            return HttpResponse(str(exc), status=403, content_type="text/plain; charset=utf-8")
        raise  # a 403 page: who asks, not what they sent
    except services.RatingConflict as exc:
        return _refused(request, trace, number, exc.current, str(exc), status=409)
    except services.RatingRefused as exc:
        return _refused(request, trace, number, stored, str(exc), status=400)
    if not request.htmx:
        return redirect(f"/review/{trace.pk}/?mode=steps#s-{number}")
    # Only the status and the version change: the form stays, and a save queued behind this
    # one reads the new version when it is sent.
    message = gettext("Saved (version %(version)s)") % {"version": rating.version}
    return render(request, "curation/_step_rating_status.html",
                  {"number": number, "rating": rating, "message": message})  # fmt: skip


def _refused(request, trace, number, rating, message, *, status):
    response = _rating_form(request, trace, number, rating=rating, message=message, kind="error",
                            status=status)  # fmt: skip
    if request.htmx:
        return reswap(retarget(response, f"#rating-{number}"), "outerHTML")
    return response


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def lost(request, trace_id: int, record_step: int):
    """Mark a step of the record as lost in the trace (``lost=0`` takes the mark back)."""
    trace = _trace(trace_id)
    marked = request.POST.get("lost", "1") != "0"
    try:
        services.record_step_lost_set(trace_id=trace.pk, record_step=record_step,
                                      rater=request.user, lost=marked)  # fmt: skip
    except services.NoSuchStep as exc:
        raise Http404(str(exc)) from exc
    except services.RaterRefused:
        raise  # a 403 page: who asks, not what they sent
    except services.RatingRefused as exc:
        return render(request, "curation/_decision_message.html", {"message": str(exc)},
                      status=400)  # fmt: skip
    if request.htmx:
        return render(request, "curation/_lost_toggle.html",
                      {"trace": trace, "number": record_step, "lost": marked})  # fmt: skip
    return redirect(f"/review/{trace.pk}/?mode=steps")


def _rate_urls(trace_id: int):
    """The rating URL of each step of a trace from one ``reverse``: a page of 200 steps
    would otherwise spend more time reversing URLs than rendering its text."""
    sentinel = 987654321
    pattern = reverse("review-rate", args=[trace_id, sentinel])
    return lambda number: pattern.replace(f"/{sentinel}/", f"/{int(number)}/")


def step_rows(request, trace: Trace, steps, render_steps, judged=None) -> list[SafeString]:
    """The steps of the rating mode as markup: each with its rendered text (``render_steps``
    renders them all at once), the judge's rating (from the judgement given, if any) and
    the reviewer's rating form."""
    steps = list(steps)
    rendered = render_steps([step.text for step in steps])
    rate_url, markup = _rate_urls(trace.pk), StepMarkup(request)
    return [
        markup.row(number=step.number, html=html, url=rate_url(step.number),
                   rating=step.rating_list[0] if step.rating_list else None,
                   judge=judged.by_step.get(step.pk) if judged else None)
        for step, html in zip(steps, rendered, strict=True)
    ]  # fmt: skip

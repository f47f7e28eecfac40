"""The annotator's workspace: next problem, the step editor and its htmx endpoints."""

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from .. import services
from ..models import STEP_KINDS, Annotation, WorkspaceSettings
from ..rendering import render_markdown
from ..roles import Role, role_required
from ..selectors import annotations_visible_to
from ..steps import StepsInvalid

GUIDELINE_EXAMPLES = {
    "good": [
        ("attempt", "Try factoring $x^2-5x+6$ as $(x-a)(x-b)$ with $a+b=5$, $ab=6$.",
         ["Vieta: for $x^2+px+q$, roots sum to $-p$ and multiply to $q$."]),
        ("attempt", "$a=1, b=6$? Sum is 7, not 5.", []),
        ("correction", "Wrong pair: need sum 5. $a=2, b=3$ works, so roots are 2 and 3.", []),
        ("verification", "Check $x=3$: $9-15+6=0$. Good.", []),
    ],
    "bad": [
        ("attempt", "Roots are 2 and 3.", []),
    ],
}  # fmt: skip


def _annotation_for_user(request, annotation_id: int) -> Annotation:
    """The annotation if this user may see it (their own, or any for reviewers/admins)."""
    try:
        return annotations_visible_to(request.user).get(pk=annotation_id)
    except Annotation.DoesNotExist as exc:
        raise Http404("No such annotation.") from exc


def _steps_from_post(post) -> list[dict]:
    kinds, texts, notes = post.getlist("kind"), post.getlist("text"), post.getlist("notes")
    if not len(kinds) == len(texts) == len(notes):
        raise StepsInvalid(["The form was incomplete; reload the page."])
    return [
        {"kind": kind, "text": text, "notes": [line for line in note.splitlines() if line.strip()]}
        for kind, text, note in zip(kinds, texts, notes, strict=True)
    ]


def _base_version(post) -> int:
    try:
        return int(post.get("version", ""))
    except ValueError as exc:
        raise StepsInvalid(["The form carries no version; reload the page."]) from exc


def _whole_number(value) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _editor_context(annotation: Annotation, *, steps=None, final_answer=None, **extra) -> dict:
    rules = WorkspaceSettings.current()
    return {
        "annotation": annotation,
        "problem": annotation.problem,
        "steps": annotation.steps if steps is None else steps,
        "final_answer": annotation.final_answer if final_answer is None else final_answer,
        "kinds": STEP_KINDS,
        "examples": GUIDELINE_EXAMPLES,
        "min_steps": rules.min_steps,
        "show_answer": rules.show_answer_after_submit
        and annotation.status == Annotation.Status.SUBMITTED,
        **extra,
    }


def _conflict_response(request, exc: services.VersionConflict, mine: dict) -> HttpResponse:
    response = render(
        request,
        "annotator/_conflict.html",
        {"current": exc.current, "mine": mine, "kinds": STEP_KINDS},
        status=409,
    )
    return _addressed(response, target="#conflict")


def _addressed(response: HttpResponse, *, target: str = "", swap: str = "innerHTML"):
    """Say where an error answer goes on the page: base.html's script then keeps it there,
    also under DEBUG, where django-htmx would otherwise show it as a whole new page."""
    if target:
        response["HX-Retarget"] = target
    response["HX-Reswap"] = swap
    return response


def _save_from_post(request, annotation: Annotation, steps: list[dict]) -> Annotation:
    return services.annotation_save(
        annotation_id=annotation.pk,
        user=request.user,
        base_version=_base_version(request.POST),
        steps=steps,
        final_answer=request.POST.get("final_answer", ""),
        elapsed_seconds=_whole_number(request.POST.get("elapsed")),
        loaded=annotation,
    )


@require_POST
@role_required(Role.ANNOTATOR)
def next_problem(request):
    annotation = services.annotation_claim(annotator=request.user)
    if annotation is None:
        messages.info(
            request, gettext("There is no problem left that needs your annotation. Thank you!")
        )
        return redirect("home")
    return redirect("annotation-edit", annotation.pk)


@require_GET
def edit(request, annotation_id: int):
    annotation = _annotation_for_user(request, annotation_id)
    if annotation.annotator_id != request.user.pk or not annotation.is_editable:
        return render(request, "annotator/annotation_detail.html", _editor_context(annotation))
    return render(request, "annotator/editor.html", _editor_context(annotation))


@require_POST
def save(request, annotation_id: int):
    """Autosave: answers with the new version and the saved indicator (or a conflict)."""
    annotation, _, refused = _save_posted(request, _annotation_for_user(request, annotation_id))
    if refused:
        return refused
    if not request.htmx:
        messages.success(
            request, gettext("Saved version %(version)s.") % {"version": annotation.version}
        )
        return redirect("annotation-edit", annotation.pk)
    return render(request, "annotator/_save_status.html", {"annotation": annotation})


def _save_posted(request, annotation, change: Callable[[list], int | None] = lambda steps: None):
    """Save the posted record after ``change`` edits its steps (it returns the step to focus).

    Returns (annotation, focus, None), or (annotation, None, the conflict or error answer).
    """
    steps = []
    try:
        steps = _steps_from_post(request.POST)
        focus = change(steps)
        return _save_from_post(request, annotation, steps), focus, None
    except services.VersionConflict as exc:
        posted = {"steps": steps, "final_answer": request.POST.get("final_answer", "")}
        return annotation, None, _conflict_response(request, exc, posted)
    except (StepsInvalid, services.AnnotationLocked) as exc:
        errors = exc.messages if isinstance(exc, StepsInvalid) else [str(exc)]
        context = {"annotation": annotation, "errors": errors}
        response = render(request, "annotator/_save_status.html", context, status=400)
        # Only the save status changes (out of band): the steps on screen stay as typed.
        return annotation, None, _addressed(response, swap="none")


def _step_change(op: str, index: str) -> Callable[[list], int | None]:
    """Add, insert, move or delete a step in place; returns the step to focus."""

    def change(steps: list) -> int | None:
        position = int(index) if index.lstrip("-").isdigit() else len(steps)
        if op in {"add", "insert"}:
            where = len(steps) if op == "add" else max(0, min(position, len(steps)))
            kind = steps[where - 1]["kind"] if op == "add" and steps else "attempt"
            steps.insert(where, {"kind": kind, "text": "", "notes": []})
            return where
        if op == "delete" and 0 <= position < len(steps):
            steps.pop(position)
            return min(position, len(steps) - 1)
        if op in {"up", "down"} and 0 <= position < len(steps):
            other = position - 1 if op == "up" else position + 1
            if 0 <= other < len(steps):
                steps[position], steps[other] = steps[other], steps[position]
            return max(0, min(other, len(steps) - 1))
        if op in {"restore", "overwrite"}:
            return None
        raise StepsInvalid([f"Unknown change {op!r}."])

    return change


@require_POST
def change_steps(request, annotation_id: int):
    """Add, insert, move or delete a step (or restore a local copy), save, re-render the editor."""
    change = _step_change(request.POST.get("op", ""), request.POST.get("index", ""))
    annotation = _annotation_for_user(request, annotation_id)
    annotation, focus, refused = _save_posted(request, annotation, change)
    if refused:
        return refused
    if not request.htmx:
        return redirect("annotation-edit", annotation.pk)
    context = _editor_context(annotation, focus=focus)
    return render(request, "annotator/_editor_update.html", context)


@require_POST
def submit(request, annotation_id: int):
    """Save what is on screen, then submit it; errors come back on the editor page."""
    annotation = _annotation_for_user(request, annotation_id)
    steps = None
    try:
        steps = _steps_from_post(request.POST)
        annotation = _save_from_post(request, annotation, steps)
        services.annotation_submit(
            annotation_id=annotation.pk,
            user=request.user,
            confirm_mismatch=request.POST.get("confirm_mismatch") == "1",
        )
    except services.VersionConflict as exc:
        return _conflict_response(
            request, exc, {"steps": steps, "final_answer": request.POST.get("final_answer", "")}
        )
    except (StepsInvalid, services.SubmissionInvalid) as exc:
        saved = isinstance(exc, services.SubmissionInvalid)
        return _editor_errors(request, annotation, steps, exc.messages, saved=saved)
    except services.AnswerMismatch as exc:
        return _editor_errors(request, annotation, steps, [str(exc)], saved=True, ask_confirm=True)
    except services.AnnotationLocked as exc:
        return _editor_errors(request, annotation, steps, [str(exc)])
    messages.success(request, gettext("Submitted. Thank you: it goes to expansion and review now."))
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = "/"
        return response
    return redirect("home")


def _editor_errors(request, annotation, steps, errors, saved=False, ask_confirm=False):
    context = _editor_context(
        annotation, steps=steps, final_answer=request.POST.get("final_answer"),
        submit_errors=errors, ask_confirm=ask_confirm, errors=None if saved else errors,
    )  # fmt: skip
    if request.htmx:
        response = render(request, "annotator/_submit_messages.html", context, status=400)
        return _addressed(response, target="#submit-messages")
    return render(request, "annotator/editor.html", context, status=400)


@require_POST
def release(request, annotation_id: int):
    annotation = _annotation_for_user(request, annotation_id)
    services.annotation_release(annotation_id=annotation.pk, user=request.user)
    messages.info(request, gettext("Problem released. Your draft stays in your list."))
    return redirect("home")


@require_POST
def preview(request):
    """Markdown preview of one step's text, sanitized like everywhere else."""
    texts = request.POST.getlist("text")
    try:
        text = texts[int(request.POST.get("preview_index", "0"))]
    except (ValueError, IndexError):
        text = request.POST.get("text", "")
    return HttpResponse(render_markdown(text))

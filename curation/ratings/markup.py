"""The rating mode's markup of each step: its text, the judge's rating, and the reviewer's
rating form (saved as it changes: static/js/step-ratings.js).

Built with ``str.format`` rather than a template: the rating mode of a 200-step trace spent
more time rendering 200 includes of a template (their tags, a dozen translations each, the
CSRF tag) and the loop's own tags than in everything else on the page. The labels are
translated once per response (``StepMarkup``), and every value that varies is escaped here
(the step's text comes rendered and sanitized by ``render_paragraphs``).
"""

from django.middleware.csrf import get_token
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from ..models import Correctness, Faithfulness

FORM = """<form class="step-rating" id="rating-{number}" method="post" action="{url}"
      hx-post="{url}" hx-trigger="change, input delay:700ms from:find textarea"
      hx-target="find .rating-status" hx-swap="innerHTML" hx-sync="this:queue last">{csrf}
  <input type="hidden" name="version" value="{version}">
  <fieldset class="correctness"><legend>{correctness}</legend>
    <label class="choice wrong"><input type="radio" name="correctness" value="-1"{c_wrong}> −1 {wrong} <kbd>1</kbd></label>
    <label class="choice neutral"><input type="radio" name="correctness" value="0"{c_neutral}> 0 {neutral} <kbd>2</kbd></label>
    <label class="choice right"><input type="radio" name="correctness" value="1"{c_right}> +1 {right} <kbd>3</kbd></label>
  </fieldset>
  <fieldset class="faithfulness"><legend>{faithfulness}</legend>
    <label class="choice"><input type="radio" name="faithfulness" value="faithful"{f_faithful}> {faithful} <kbd>f</kbd></label>
    <label class="choice"><input type="radio" name="faithfulness" value="invented"{f_invented}> {invented} <kbd>i</kbd></label>
    <label class="choice"><input type="radio" name="faithfulness" value="early_fix"{f_early_fix}> {early_fix} <kbd>e</kbd></label>
    <label class="choice"><input type="radio" name="faithfulness" value="off_record"{f_off_record}> {off_record} <kbd>o</kbd></label>
  </fieldset>
  <label class="note">{note} <textarea name="note" rows="1" maxlength="2000" aria-label="{note_label}">{note_text}</textarea></label>
  <span class="rating-status {kind}" role="status">{message}</span>
</form>"""  # noqa: E501 (the markup as it is sent)

ROW = """<li class="rated-step" id="s-{number}" data-number="{number}"><span class="pnum">{label}</span>
        <div class="markdown">{html}</div>
        {judge}
        {form}
        <p class="after-wrong-note muted">{after_wrong}</p>
      </li>"""  # noqa: E501
JUDGE = '<p class="judge-rating">{said} <strong>{score}</strong>, {faithfulness} — {reason}</p>'

# The radio buttons of each value: the FORM field that says "checked" when it is the rating's.
CORRECTNESS = {Correctness.WRONG: "c_wrong", Correctness.NEUTRAL: "c_neutral",
               Correctness.RIGHT: "c_right"}  # fmt: skip
FAITHFULNESS = {value: f"f_{value}" for value in Faithfulness.values}
UNCHECKED = dict.fromkeys([*CORRECTNESS.values(), *FAITHFULNESS.values()], "")


class StepMarkup:
    """The steps of one response: its CSRF field and labels in the active language."""

    def __init__(self, request) -> None:
        self.fixed = {
            "csrf": format_html(
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
            ),  # fmt: skip
            "correctness": escape(gettext("Correctness")),
            "wrong": escape(gettext("wrong")),
            "neutral": escape(gettext("neutral")),
            "right": escape(gettext("right")),
            "faithfulness": escape(gettext("Faithfulness")),
            "faithful": escape(gettext("faithful")),
            "invented": escape(gettext("invented")),
            "early_fix": escape(gettext("early fix")),
            "off_record": escape(gettext("off record")),
            "note": escape(gettext("Note")),
        }
        self.note_label = gettext("Note on step %(number)s")
        self.step_label = gettext("Step %(number)s")
        self.judge_said = escape(gettext("Judge:"))
        self.after_wrong = escape(gettext("Not rated: after the first wrong step."))

    def row(self, *, number: int, html: str, rating, url: str, judge: dict | None) -> SafeString:
        """Step ``number`` with its rendered text ``html`` (sanitized already), the judge's
        rating (None: none) and the reviewer's ``rating`` form."""
        said = ""
        if judge:
            correctness = judge.get("correctness")
            said = JUDGE.format(
                said=self.judge_said, faithfulness=escape(judge.get("faithfulness", "")),
                score="+1" if correctness == 1 else escape("" if correctness is None
                                                           else correctness),
                reason=escape(judge.get("reason", "")),
            )  # fmt: skip
        markup = ROW.format(
            number=int(number), label=escape(self.step_label % {"number": int(number)}),
            html=html, judge=said, form=self.form(number=number, rating=rating, url=url),
            after_wrong=self.after_wrong,
        )  # fmt: skip
        return mark_safe(markup)  # noqa: S308 - escaped above; html sanitized when rendered

    def form(
        self, *, number: int, rating, url: str, message: str = "", kind: str = ""
    ) -> SafeString:
        """The form of step ``number`` showing ``rating`` (a StepRating, or None: unrated)."""
        checked = dict(UNCHECKED)
        if rating is not None:
            if rating.correctness in CORRECTNESS:
                checked[CORRECTNESS[rating.correctness]] = " checked"
            if rating.faithfulness in FAITHFULNESS:
                checked[FAITHFULNESS[rating.faithfulness]] = " checked"
        markup = FORM.format(
            number=int(number), url=escape(url), version=int(rating.version if rating else 0),
            note_label=escape(self.note_label % {"number": int(number)}),
            note_text=escape(rating.note if rating else ""), kind=escape(kind),
            message=escape(message), **checked, **self.fixed,
        )  # fmt: skip
        return mark_safe(markup)  # noqa: S308 - every value above is escaped


def rating_form(request, **kwargs) -> SafeString:
    """One step's form, for an answer that carries only it (a refused save)."""
    return StepMarkup(request).form(**kwargs)

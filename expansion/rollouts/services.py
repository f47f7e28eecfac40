"""Rollout campaigns: creating one (its problems and one job per sample), pausing, resuming,
cancelling and running it again, and the samples to send again.

Samples are jobs of the engine in ``expansion.jobs``, queued and sent like expansion jobs
(``expansion.queueing``): a row first, its message on commit, the periodic requeue for a
message that was lost. A sample runs in ``running``; its verdict is ``verifying``'s.
"""

import hashlib
import json
import logging
from collections import Counter, defaultdict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotator.forms import ProblemFilterForm
from annotator.selectors import problem_list

from ..jobs.lifecycle import jobs_cancel, jobs_mark_sent, jobs_stalled
from ..models import LLMEndpoint, RolloutCampaign, RolloutSample, SolvePrompt
from ..models.rollouts import SAMPLES_MAX
from .prompts import solve_prompt_default, solve_prompt_problems

logger = logging.getLogger(__name__)

# The problem-list filters a campaign chooses its problems by (the list page's names).
FILTERS = ("source", "subject", "level", "status")
CREATE_BATCH = 1000  # sample rows written at once


class CampaignRefused(Exception):
    """A campaign that cannot be created or run as asked; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def sample_key(*, campaign: RolloutCampaign, problem_id: int, prompt: SolvePrompt,
               endpoint: LLMEndpoint, params: dict, sample_index: int) -> str:  # fmt: skip
    """The sample's idempotency key: one job per campaign, problem, prompt version, endpoint,
    parameters and sample index, however often it is asked for."""
    identity = [campaign.pk, problem_id, prompt.version, prompt.content_hash, endpoint.pk,
                params, sample_index]  # fmt: skip
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _problems(filters: dict):
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise CampaignRefused(
            f"Unknown filter(s): {', '.join(sorted(unknown))}; use {', '.join(FILTERS)}."
        )
    form = ProblemFilterForm({k: v for k, v in filters.items() if v not in (None, "")})
    if not form.is_valid():
        errors = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in form.errors.items())
        raise CampaignRefused(f"Invalid filters: {errors}")
    return problem_list(**form.selector_kwargs())


def _refusal(*, name: str, endpoint: LLMEndpoint, prompt: SolvePrompt, samples_per_problem: int,
             temperature: float, top_p: float, max_tokens: int | None) -> str | None:  # fmt: skip
    if not name.strip():
        return "Give the campaign a name."
    if RolloutCampaign.objects.filter(name=name.strip()).exists():
        return f"A campaign named {name.strip()!r} exists already; choose another name."
    if not 1 <= samples_per_problem <= SAMPLES_MAX:
        return (f"Samples per problem must be between 1 and {SAMPLES_MAX} "
                f"(got {samples_per_problem}).")  # fmt: skip
    if not endpoint.is_active:
        return f"Endpoint {endpoint.name!r} is inactive: activate it or choose another."
    if not 0 <= temperature <= 2:
        return f"Temperature must be between 0 and 2 (got {temperature})."
    if not 0 < top_p <= 1:
        return f"top_p must be above 0 and at most 1 (got {top_p})."
    if max_tokens is not None and max_tokens < 1:
        return f"max_tokens must be at least 1 (got {max_tokens})."
    problems = solve_prompt_problems(prompt)
    if problems:
        return f"Solve prompt {prompt} cannot be used: " + " ".join(problems.values())
    return None


def campaign_check(*, name: str, endpoint: LLMEndpoint, prompt: SolvePrompt,
                   samples_per_problem: int, temperature: float, top_p: float,
                   max_tokens: int | None, filters: dict):  # fmt: skip
    """The problems a campaign so asked for would sample, or CampaignRefused saying why it
    cannot be created (what the admin's form asks before it saves)."""
    refusal = _refusal(name=name, endpoint=endpoint, prompt=prompt,
                       samples_per_problem=samples_per_problem, temperature=temperature,
                       top_p=top_p, max_tokens=max_tokens)  # fmt: skip
    if refusal:
        raise CampaignRefused(refusal)
    problems = _problems(filters)
    if not problems.exists():
        shown = ", ".join(f"{k}={v}" for k, v in filters.items()) or "none"
        raise CampaignRefused(f"No problem matches the filters ({shown}).")
    return problems


def campaign_create(
    *,
    name: str,
    endpoint: LLMEndpoint,
    prompt: SolvePrompt | None = None,
    samples_per_problem: int = 16,
    temperature: float = 0.7,
    top_p: float = 0.95,
    max_tokens: int | None = None,
    filters: dict | None = None,
    user=None,
) -> RolloutCampaign:
    """A campaign over the problems the filters choose, with one queued sample per problem
    and sample index, sent to the workers once the transaction commits.

    Raises CampaignRefused with a message a person can act on. Problems without a reference
    answer are sampled all the same (their samples' verdict is ``no_reference``); the
    campaign's ``without_reference`` says how many problems that is.
    """
    filters = dict(filters or {})
    prompt = prompt or solve_prompt_default()
    chosen = list(campaign_check(
        name=name, endpoint=endpoint, prompt=prompt, samples_per_problem=samples_per_problem,
        temperature=temperature, top_p=top_p, max_tokens=max_tokens, filters=filters,
    ).values_list("pk", "reference_answer"))  # fmt: skip
    params = {"model": endpoint.model, "temperature": temperature, "top_p": top_p,
              "max_tokens": max_tokens or endpoint.max_tokens}  # fmt: skip
    try:
        with transaction.atomic():
            campaign = RolloutCampaign.objects.create(
                name=name.strip(), endpoint=endpoint, prompt=prompt,
                samples_per_problem=samples_per_problem, temperature=temperature, top_p=top_p,
                max_tokens=max_tokens, filters=filters, problems=len(chosen), created_by=user,
            )  # fmt: skip
            now = timezone.now()
            samples = (
                RolloutSample(
                    campaign=campaign, problem_id=problem_id, sample_index=index,
                    endpoint=endpoint, params=params, is_simulated=endpoint.is_simulated,
                    idempotency_key=sample_key(campaign=campaign, problem_id=problem_id,
                                               prompt=prompt, endpoint=endpoint,
                                               params=params, sample_index=index),
                    # Sent on commit; should that send fail, the requeue sends it again.
                    sent_at=now, sends=1,
                )
                for problem_id, _ in chosen
                for index in range(samples_per_problem)
            )  # fmt: skip
            RolloutSample.objects.bulk_create(samples, batch_size=CREATE_BATCH)
            if not endpoint.use_batches:  # batch endpoints' samples wait for the poller
                transaction.on_commit(lambda: _send_campaign(campaign.pk), robust=True)
    except IntegrityError as error:  # a campaign of the same name created meanwhile
        raise CampaignRefused(f"Could not create campaign {name!r}: {error}") from error
    campaign.without_reference = sum(1 for _, reference in chosen if not reference.strip())
    return campaign


def campaign_summary(campaign: RolloutCampaign) -> dict:
    """Where a campaign's samples are: by status and by verdict, and the problems chosen
    that have no reference answer (their samples verify nothing)."""
    return campaign_summaries([campaign])[campaign.pk]


def campaign_summaries(campaigns: list[RolloutCampaign]) -> dict[int, dict]:
    """``campaign_summary`` of each campaign, by id: two queries however many campaigns."""
    ids = [campaign.pk for campaign in campaigns]
    by_status, by_verdict = defaultdict(Counter), defaultdict(Counter)
    counted = (
        RolloutSample.objects.filter(campaign_id__in=ids).order_by()
        .values_list("campaign_id", "status", "verdict").annotate(count=Count("pk"))
    )  # fmt: skip
    for campaign_id, sample_status, verdict, count in counted:
        by_status[campaign_id][sample_status] += count
        by_verdict[campaign_id][verdict] += count
    without_reference = dict(
        RolloutSample.objects.filter(campaign_id__in=ids, problem__reference_answer="")
        .order_by().values_list("campaign_id")
        .annotate(problems=Count("problem_id", distinct=True))
    )  # fmt: skip
    return {
        campaign.pk: {
            "state": campaign.state,
            "problems": campaign.problems,
            "samples": sum(by_status[campaign.pk].values()),
            "by_status": dict(by_status[campaign.pk]),
            "by_verdict": dict(by_verdict[campaign.pk]),
            "without_reference": without_reference.get(campaign.pk, 0),
        }
        for campaign in campaigns
    }


def _locked(campaign_id: int) -> RolloutCampaign:
    return RolloutCampaign.objects.select_for_update().get(pk=campaign_id)


@transaction.atomic
def campaign_pause(*, campaign_id: int) -> RolloutCampaign:
    """Stop starting samples: a worker that receives one gives it back to the queue;
    running samples finish. A cancelled campaign stays cancelled."""
    campaign = _locked(campaign_id)
    if campaign.state == RolloutCampaign.State.ACTIVE:
        campaign.state = RolloutCampaign.State.PAUSED
        campaign.save(update_fields=["state", "updated_at"])
    return campaign


def campaign_resume(*, campaign_id: int) -> int:
    """Make a paused campaign active and send its queued samples again; how many."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign.state == RolloutCampaign.State.CANCELLED:
            raise CampaignRefused(f"Campaign {campaign.name!r} was cancelled; create a new one.")
        if campaign.state == RolloutCampaign.State.PAUSED:
            campaign.state = RolloutCampaign.State.ACTIVE
            campaign.save(update_fields=["state", "updated_at"])
    return campaign_run(campaign_id=campaign_id)


def campaign_cancel(*, campaign_id: int) -> int:
    """Cancel the campaign: its queued samples at once, its running ones at their next
    write (as an expansion's cancel); finished samples are kept. How many were cancelled."""
    with transaction.atomic():
        campaign = _locked(campaign_id)
        campaign.state = RolloutCampaign.State.CANCELLED
        campaign.save(update_fields=["state", "updated_at"])
        return jobs_cancel(RolloutSample, Q(campaign_id=campaign_id))


def campaign_run(*, campaign_id: int) -> int:
    """Send the campaign's samples that are not finished (queued) to the workers again; how
    many. A finished campaign sends nothing; a paused or cancelled one is refused."""
    campaign = RolloutCampaign.objects.select_related("endpoint").get(pk=campaign_id)
    if campaign.state != RolloutCampaign.State.ACTIVE:
        raise CampaignRefused(
            f"Campaign {campaign.name!r} is {campaign.state}: "
            + ("resume it first." if campaign.state == "paused" else "create a new one.")
        )
    if campaign.endpoint.use_batches:
        return 0  # the batch poller sends its queued samples
    queued = list(campaign.samples.filter(status=RolloutSample.Status.QUEUED)
                  .order_by("pk").values_list("pk", flat=True))  # fmt: skip
    if queued:
        jobs_mark_sent(RolloutSample, queued)
        _send(queued)
    return len(queued)


def _send_campaign(campaign_id: int) -> None:
    queued = RolloutSample.objects.filter(campaign_id=campaign_id,
                                          status=RolloutSample.Status.QUEUED)  # fmt: skip
    _send(list(queued.order_by("pk").values_list("pk", flat=True)))


def _send(sample_ids: list[int]) -> None:
    """Send the samples' messages. A broker that is down loses none of them: their rows say
    when they were sent, and the periodic requeue sends them again."""
    from ..tasks import rollout_sample

    for sample_id in sample_ids:
        try:
            rollout_sample.delay(sample_id)
        except Exception:
            logger.warning("Could not send rollout sample %s to the broker; the requeue will",
                           sample_id, exc_info=True)  # fmt: skip


def samples_stalled() -> list[int]:
    """Samples of active campaigns to send again: running without a heartbeat, or queued
    and due for another message (the same intervals as expansion jobs). Samples of endpoints
    that use batches are the batch poller's."""
    stalled = jobs_stalled(RolloutSample, first=settings.EXPANSION_RESEND_AFTER_SECONDS,
                           cap=settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS)  # fmt: skip
    if not stalled:
        return []
    in_batch = Q(status=RolloutSample.Status.RUNNING, run_id__startswith="batch-")
    left_out = RolloutSample.objects.filter(
        Q(endpoint__use_batches=True) | in_batch | ~Q(campaign__state=RolloutCampaign.State.ACTIVE),
        pk__in=stalled,
    )
    skipped = set(left_out.values_list("pk", flat=True))
    return [pk for pk in stalled if pk not in skipped]


def samples_resend() -> int:
    """Send every stalled sample of an active campaign one more message; how many."""
    stalled = samples_stalled()
    if stalled:
        jobs_mark_sent(RolloutSample, stalled)
        _send(stalled)
        logger.info("Sent %d stalled rollout samples again", len(stalled))
    return len(stalled)

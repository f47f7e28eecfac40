"""Rollout campaigns from the command line: create one, list them, show one, and pause,
resume, cancel or run one again (the same services as the API and the admin)."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from expansion.models import LLMEndpoint, RolloutCampaign, SolvePrompt
from expansion.rollouts import services
from expansion.rollouts.prompts import solve_prompt_default

STEERS = {
    "pause": (lambda pk: services.campaign_pause(campaign_id=pk), "paused"),
    "resume": (lambda pk: services.campaign_resume(campaign_id=pk), "resumed; {} samples sent"),
    "cancel": (lambda pk: services.campaign_cancel(campaign_id=pk), "cancelled; {} samples "
               "cancelled"),
    "run": (lambda pk: services.campaign_run(campaign_id=pk), "{} samples sent"),
}  # fmt: skip


def _one(model, value: str, what: str, *fields: str):
    """A row by id or by one of ``fields``, or a CommandError naming what was looked for."""
    lookup = Q(pk=int(value)) if value.isdigit() else Q()
    for field in fields:
        lookup |= Q(**{field: value})
    found = list(model.objects.filter(lookup)[:2])
    if len(found) != 1:
        problem = "No" if not found else "More than one"
        raise CommandError(
            f"{problem} {what} {value!r} (give its id or its {' or '.join(fields)})."
        )
    return found[0]


class Command(BaseCommand):
    help = "Create, list, show, pause, resume, cancel or run again rollout campaigns."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        create = commands.add_parser("create", help="Create a campaign and queue its samples.")
        create.add_argument("name")
        create.add_argument("--endpoint", required=True, help="The policy endpoint: id or name.")
        create.add_argument("--prompt", help="A solve prompt version's id (default: the default).")
        create.add_argument("--samples", type=int, default=16, help="Samples per problem (1-256).")
        create.add_argument("--temperature", type=float, default=0.7)
        create.add_argument("--top-p", type=float, default=0.95)
        create.add_argument("--max-tokens", type=int, help="Default: the endpoint's max_tokens.")
        for name in services.FILTERS:
            create.add_argument(f"--{name}", help=f"Only problems of this {name} (problem list).")
        commands.add_parser("list", help="Every campaign with its state and verdicts.")
        for name in ("show", *STEERS):
            commands.add_parser(name, help=f"{name.capitalize()} a campaign.").add_argument(
                "campaign", help="Its id or name."
            )

    def handle(self, *args, command, **options):
        if command == "create":
            return self._create(options)
        if command == "list":
            for campaign in RolloutCampaign.objects.select_related("endpoint"):
                self._line(campaign)
            return None
        campaign = _one(RolloutCampaign, options["campaign"], "campaign", "name")
        if command in STEERS:
            steer, said = STEERS[command]
            try:
                result = steer(campaign.pk)
            except services.CampaignRefused as error:
                raise CommandError(error.message) from error
            self.stdout.write(f"Campaign {campaign.name!r} " + said.format(result))
        campaign.refresh_from_db()
        self._line(campaign)
        return None

    def _create(self, options):
        endpoint = _one(LLMEndpoint, options["endpoint"], "endpoint", "name")
        prompt = (_one(SolvePrompt, options["prompt"], "solve prompt", "content_hash")
                  if options["prompt"] else solve_prompt_default())  # fmt: skip
        filters = {name: options[name] for name in services.FILTERS if options[name]}
        try:
            campaign = services.campaign_create(
                name=options["name"], endpoint=endpoint, prompt=prompt,
                samples_per_problem=options["samples"], temperature=options["temperature"],
                top_p=options["top_p"], max_tokens=options["max_tokens"], filters=filters,
            )  # fmt: skip
        except services.CampaignRefused as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"Campaign {campaign.name!r} (id {campaign.pk}): {campaign.problems} problems x "
            f"{campaign.samples_per_problem} samples of {endpoint.model} with {prompt} queued."
        )
        if campaign.without_reference:
            self.stdout.write(
                f"{campaign.without_reference} of the problems have no reference answer: their "
                "samples are not verified (verdict no_reference)."
            )
        self._line(campaign)

    def _line(self, campaign: RolloutCampaign) -> None:
        summary = services.campaign_summary(campaign)
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items()))
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_verdict"].items()))
        self.stdout.write(
            f"{campaign.pk}\t{campaign.name}\t{campaign.state}\t{campaign.endpoint.model}\t"
            f"{summary['samples']} samples ({statuses}; {verdicts})"
        )

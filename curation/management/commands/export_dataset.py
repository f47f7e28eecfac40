import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from curation.exports import rollouts
from curation.exports.prm import LABELS, NEUTRAL
from curation.exports.records import FORMATS, PAIR_LAYOUTS, STATUSES, STYLES
from curation.exports.writer import ExportError, dataset_export, parse_day, parse_splits
from curation.filters import ExportFilterForm


def _day(value: str, option: str):
    try:
        return parse_day(value, option)
    except ExportError as exc:
        raise CommandError(str(exc)) from exc


def _given(value, default):
    return default if value is None else value


class Command(BaseCommand):
    help = (
        "Export reviewed traces as training data (JSONL per split, dataset_info.json for "
        "LLaMA-Factory, manifest.json with checksums, a dataset card)."
    )
    requires_system_checks = []  # start-up time: the checks load every URL and view

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("--output", required=True, type=Path, help="Folder to write into.")
        parser.add_argument("--style", default="think-tags", choices=STYLES,
                            help="reasoning-field is for Hugging Face datasets/TRL: "
                                 "no dataset_info.json (LLaMA-Factory has no column for "
                                 "it).")  # fmt: skip
        parser.add_argument("--system", default="", help="System prompt for every record.")
        parser.add_argument("--labels", default="human", choices=LABELS,
                            help="prm, prm800k: whose step ratings label the steps.")  # fmt: skip
        parser.add_argument("--neutral", default="negative", choices=NEUTRAL,
                            help="prm: whether a step rated 0 is labelled true (positive) "
                                 "or false (negative, the default).")  # fmt: skip
        parser.add_argument("--split", default="train=1", help="e.g. train=0.95,test=0.05")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the split by problem.")
        parser.add_argument("--force", action="store_true", help="Replace an existing export.")
        parser.add_argument("--status", choices=STATUSES,
                            help="Review status of the traces (default approved).")  # fmt: skip
        for name, meaning in (("created-since", "created on or after"),
                              ("created-until", "created before"),
                              ("finished-since", "finished on or after"),
                              ("finished-until", "finished before")):  # fmt: skip
            parser.add_argument(f"--{name}", default="", help=f"Traces {meaning} this date.")
        parser.add_argument("--since", default="", help="Old name of --created-since.")
        parser.add_argument("--until", default="", help="Old name of --created-until.")
        parser.add_argument("--source", default="", metavar="traces|rollouts|traces,rollouts",
                            help="What to export: reviewed traces (the default), rollout "
                                 "samples, or both. Any other value is the problems' source "
                                 "(the old meaning; --problem-source).")  # fmt: skip
        parser.add_argument("--problem-source", default="", help="The problems' source.")
        parser.add_argument("--campaign", default="", metavar="NAME_OR_ID,...",
                            help="Rollouts: these campaigns only (default all).")  # fmt: skip
        parser.add_argument("--pairs-per-problem", type=int, metavar="K",
                            help="Rollouts, dpo: at most K pairs per problem (default "
                                 f"{rollouts.PAIRS_PER_PROBLEM}).")  # fmt: skip
        parser.add_argument("--samples-per-problem", type=int, metavar="M",
                            help="Rollouts, messages/sharegpt/alpaca: at most M correct "
                                 f"samples per problem (default "
                                 f"{rollouts.SAMPLES_PER_PROBLEM}).")  # fmt: skip
        parser.add_argument("--pick", choices=rollouts.PICKS,
                            help="Rollouts, messages/sharegpt/alpaca: which correct samples: "
                                 "the shortest (default) or a draw with --seed.")  # fmt: skip
        parser.add_argument("--pair-layout", default="llama-factory", choices=PAIR_LAYOUTS,
                            help="dpo: LLaMA-Factory's sharegpt ranking (default) or "
                                 "TRL's conversational prompt/chosen/rejected message "
                                 "lists.")  # fmt: skip
        parser.add_argument("--subject", default="")
        parser.add_argument("--level", default="", help="5 or 'Level 5'.")
        parser.add_argument("--prompt-version", type=int, help="Prompt version id.")
        parser.add_argument("--endpoint", default="", help="Endpoint name or id.")
        parser.add_argument("--model", default="")
        parser.add_argument("--min-tokens", type=int, default=0)
        parser.add_argument("--checks-passed", action="store_true",
                            help="Only traces that no automatic check flagged.")  # fmt: skip
        parser.add_argument("--include-simulated", action="store_true")
        parser.add_argument("--allow-contaminated", default="", metavar="NAME,...",
                            help="Keep the traces of problems in these benchmarks (by "
                                 "default all benchmarks' problems are left out).")  # fmt: skip
        parser.add_argument("--dedup", action="store_true",
                            help="Keep one trace per group of near-duplicate traces of the "
                                 "same problem.")  # fmt: skip

    def _sources(self, options) -> tuple[tuple[str, ...], str]:
        """What --source selects and the problems' source (--source's old meaning)."""
        given, problem_source = options["source"].strip(), options["problem_source"]
        sources = rollouts.parse_sources(given) if given else ("traces",)
        if sources is None:  # not traces/rollouts: the problems' source, as it always was
            if problem_source and problem_source != given:
                raise CommandError(f"--source {given!r} is read as the problems' source, "
                                   f"and --problem-source says {problem_source!r}: give "
                                   "one.")  # fmt: skip
            sources, problem_source = ("traces",), given
        return sources, problem_source

    def _check_combination(self, options, sources: tuple[str, ...]) -> None:
        """Refuse options that do not apply to what is exported, naming them."""
        fmt, rollout = options["fmt"], "rollouts" in sources
        sft_only = (("--samples-per-problem", options["samples_per_problem"]),
                    ("--pick", options["pick"]))  # fmt: skip
        dpo_only = (("--pairs-per-problem", options["pairs_per_problem"]),)
        for option, value in (*sft_only, *dpo_only):
            if value is not None and not rollout:
                raise CommandError(f"{option} applies to rollout samples: add --source "
                                   "rollouts (or traces,rollouts).")  # fmt: skip
        for option, value in dpo_only if fmt != "dpo" else sft_only:
            if value is not None:
                needs = "--format dpo" if option == "--pairs-per-problem" else (
                    "--format messages, sharegpt or alpaca")  # fmt: skip
                raise CommandError(f"{option} applies to {needs}, not {fmt}.")
        if options["pair_layout"] != "llama-factory" and fmt != "dpo":
            raise CommandError(f"--pair-layout applies to --format dpo, not {fmt}.")
        if sources != ("rollouts",):
            return
        trace_only = [("--status", options["status"]),
                      ("--prompt-version", options["prompt_version"]),
                      ("--endpoint", options["endpoint"]), ("--model", options["model"]),
                      ("--min-tokens", options["min_tokens"]),
                      ("--checks-passed", options["checks_passed"])]  # fmt: skip
        trace_only += [("--" + name, options[name.replace("-", "_")]) for name in
                       ("created-since", "created-until", "finished-since", "finished-until",
                        "since", "until")]  # fmt: skip
        given = [option for option, value in trace_only if value not in (None, "", 0, False)]
        if given:
            raise CommandError(f"{', '.join(given)} filter{'' if len(given) > 1 else 's'} "
                               "traces, not rollout samples: with --source rollouts, leave "
                               f"{'them' if len(given) > 1 else 'it'} out (or use --source "
                               "traces,rollouts).")  # fmt: skip

    def handle(self, *args, **options):
        sources, problem_source = self._sources(options)
        self._check_combination(options, sources)
        days = {}
        for name, old in (("created_since", "since"), ("created_until", "until"),
                          ("finished_since", None), ("finished_until", None)):  # fmt: skip
            option, value = name, options[name]
            if not value and old:
                option, value = old, options[old]
            days[name] = _day(value, "--" + option.replace("_", "-"))
        filters = {
            "status": options["status"] or "approved", **days,
            "source": problem_source, "subject": options["subject"],
            "level": options["level"] or None, "prompt": options["prompt_version"],
            "endpoint": options["endpoint"], "model": options["model"],
            "min_tokens": options["min_tokens"], "checks_passed": options["checks_passed"],
            "include_simulated": options["include_simulated"],
            "allow_contaminated": options["allow_contaminated"],
        }  # fmt: skip
        form = ExportFilterForm.bind(filters)
        if not form.is_valid():
            raise CommandError(" ".join(form.refusals()))
        filters["level"] = form.cleaned_data["level"]  # as a number in the manifest
        filters["allow_contaminated"] = form.cleaned_data["allow_contaminated"]  # a list
        on_terminal = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if on_terminal and (done % 500 == 0 or done == total):
                width = 30
                filled = width * done // total
                bar = "#" * filled + "-" * (width - filled)
                sys.stderr.write(f"\r[{bar}] {done:,}/{total:,} traces")
                if done == total:
                    sys.stderr.write("\n")

        try:
            result = dataset_export(
                output=options["output"], fmt=options["fmt"], style=options["style"],
                system=options["system"], splits=parse_splits(options["split"]),
                seed=options["seed"], force=options["force"], filters=filters, progress=progress,
                dedup=options["dedup"],
                labels=options["labels"], neutral=options["neutral"],
                sources=sources, campaigns=options["campaign"],
                pairs_per_problem=_given(options["pairs_per_problem"], rollouts.PAIRS_PER_PROBLEM),
                samples_per_problem=_given(options["samples_per_problem"],
                                           rollouts.SAMPLES_PER_PROBLEM),
                pick=options["pick"] or "shortest", pair_layout=options["pair_layout"],
            )  # fmt: skip
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt as exc:
            raise CommandError("Interrupted: nothing was written.") from exc
        for warning in result.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))
        for name, row in result.manifest["contamination"].items():
            verb = "kept (allowed)" if row["allowed"] else "left out"
            count = row["kept"] if row["allowed"] else row["left_out"]
            self.stdout.write(f"Benchmark {name}: {count} record(s) of its problems {verb}.")
        if "dedup" in result.manifest:
            self.stdout.write(f"Dropped {result.manifest['dedup']['dropped']} near-duplicate "
                              "trace(s) of the same problem.")  # fmt: skip
        if "sources" in result.manifest:
            by_source = result.manifest["sources"].items()
            self.stdout.write(f"Records by source: {', '.join(f'{k} {v}' for k, v in by_source)}.")
        for file in result.files:
            self.stdout.write(f"{file['name']}: {file['records']} records, sha256 {file['sha256']}")
        self.stdout.write(self.style.SUCCESS(f"Exported to {options['output']}."))

"""The kinds of job bench/expansion.py runs through the engine: what it seeds for each, what
the simulator is told, the reference client's requests, and how the jobs must have ended.

Each kind seeds through the path the product uses (its service queues the jobs and sends
their messages on commit) on a migrated database with one submitted annotation and an
endpoint on the simulator (``support.submitted_annotation``); Django must be set up.

- ``expansion``: ``--jobs`` traces of the annotation (``traces_request(extra=True)``).
- ``rollout``: a campaign (``campaign_create``) over arithmetic problems ("What is 12+7?")
  with as many samples each as divide ``--jobs`` (at most 16), the simulator padding its solve
  answers to ``--tokens`` (``--solve-tokens``); every sample must end verified, with the
  verdict the simulator's draw decided (right or wrong).
- ``judge``: ``--jobs`` succeeded traces of the annotation, their thought the simulator's
  ``--tokens``-token trace of it (one text for all, so that every judge answer is as long),
  each sent to the judge (``judge_request``, which splits its steps). A judge answer is one
  short JSON rating per step, however long the trace: the simulator's seconds per token are
  set so that it takes ``--seconds-per-answer``; every job must end with one rating per step.
"""

import dataclasses
import operator
from collections.abc import Callable

from django.db.models import Count, Q, QuerySet

ROLLOUT_SAMPLES_MAX = 16  # samples per problem: the largest divisor of --jobs up to this
OPERATIONS = (("+", operator.add), ("-", operator.sub), ("*", operator.mul))


@dataclasses.dataclass
class Kind:
    jobs: QuerySet  # the seeded jobs (traces, samples or judge jobs)
    tokens: int  # tokens per answer
    simulator: list[str]  # llm_simulator options the kind needs
    request: Callable[[int], dict]  # the reference client's i-th request (create() kwargs)
    ended: Callable[[], tuple[str, bool]]  # how the jobs ended: (a line, whether all is well)
    note: str = ""  # what was seeded


def expansion_kind(args, annotation, endpoint) -> Kind:
    from expansion.models import Trace
    from expansion.services import traces_request

    traces_request(annotation=annotation, endpoint=endpoint, samples=args.jobs, extra=True)
    messages = [{"role": "user", "content": "Find $x$ with $x+x=8$. Three plus three is six."}]
    return Kind(
        jobs=Trace.objects.filter(endpoint=endpoint), tokens=args.tokens, simulator=[],
        request=lambda i: {"messages": messages, "extra_body": {"sample_index": i}},
        ended=lambda: ("", True), note=f"{args.jobs} traces of one annotation",
    )  # fmt: skip


def rollout_kind(args, annotation, endpoint) -> Kind:
    from annotator.models import Problem
    from devtools.simulated_solve import solve_answer
    from expansion.models import RolloutSample
    from expansion.rollouts.prompts import build_solve_messages, solve_prompt_default
    from expansion.rollouts.services import campaign_create

    per_problem = max(d for d in range(1, ROLLOUT_SAMPLES_MAX + 1) if args.jobs % d == 0)
    count = args.jobs // per_problem
    problems = []
    for i in range(count):
        (sign, apply), a, b = OPERATIONS[i % 3], 10 + i, 3 + i % 7
        problems.append(Problem(source="bench-rollout", external_id=f"r{i:05}",
                                statement=f"What is {a}{sign}{b}?",
                                reference_answer=str(apply(a, b))))  # fmt: skip
    Problem.objects.bulk_create(problems)
    campaign = campaign_create(name="bench", endpoint=endpoint, samples_per_problem=per_problem,
                               filters={"source": "bench-rollout"})  # fmt: skip
    samples = RolloutSample.objects.filter(campaign=campaign)
    prompt = solve_prompt_default()
    order = list(samples.order_by("pk").values_list("problem__statement", "sample_index"))

    def request(i: int) -> dict:
        statement, index = order[i]
        return {"messages": build_solve_messages(prompt, statement),
                "extra_body": {"sample_index": index}}  # fmt: skip

    def ended() -> tuple[str, bool]:
        rows = samples.filter(status="succeeded").values_list(
            "problem__statement", "sample_index", "verdict")  # fmt: skip
        verdicts, wrong = {}, 0
        for statement, index, verdict in rows.iterator(chunk_size=2000):
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            _, right = solve_answer(statement, [index, None])
            wrong += verdict != ("correct" if right else "incorrect")
        flags = {f: samples.filter(**{f"flag_{f}": True}).count()
                 for f in ("format", "repetition", "truncated", "no_reflection")}  # fmt: skip
        line = (f"samples verified: {verdicts} ({wrong} not the verdict the simulator drew, "
                f"must be 0); flagged: {flags}")  # fmt: skip
        return line, wrong == 0 and set(verdicts) <= {"correct", "incorrect"}

    return Kind(
        jobs=samples, tokens=args.tokens, simulator=["--solve-tokens", str(args.tokens)],
        request=request, ended=ended,
        note=f"campaign of {count} problems x {per_problem} samples",
    )  # fmt: skip


def judge_kind(args, annotation, endpoint) -> Kind:
    from curation.judging.prompts import RESPONSE_FORMAT, build_judge_messages
    from curation.judging.services import judge_request
    from curation.models import JudgeJob, TraceStep
    from devtools.simulated_text import build_trace
    from devtools.simulator import SimConfig
    from devtools.simulator_http import answer_parts
    from expansion.models import Trace
    from expansion.parsing import split_thought
    from expansion.prompts import build_messages, prompt_active

    prompt = prompt_active()
    record = {"steps": annotation.steps, "final_answer": annotation.final_answer}
    statement = annotation.problem.statement
    content, _ = build_trace(build_messages(prompt, problem_statement=statement, record=record),
                             [0, None], args.tokens)  # fmt: skip
    thought, solution = split_thought(content, "", thought_format="still")
    Trace.objects.bulk_create(
        Trace(annotation=annotation, annotation_version=annotation.version, record=record,
              prompt=prompt, endpoint=endpoint, params={"model": endpoint.model},
              sample_index=i, idempotency_key=f"bench-judge-{i:06}", status="succeeded",
              is_simulated=True, content=content, thought=thought, solution=solution)
        for i in range(args.jobs)
    )  # fmt: skip
    for trace_id in Trace.objects.filter(endpoint=endpoint).values_list("pk", flat=True):
        judge_request(trace_id=trace_id, endpoint=endpoint)  # splits the steps, then queues
    jobs = JudgeJob.objects.filter(endpoint=endpoint)
    first = jobs.order_by("pk").first()
    texts = dict(TraceStep.objects.filter(pk__in=first.step_ids).values_list("pk", "text"))
    messages = build_judge_messages(first.prompt, problem_statement=statement, record=record,
                                    steps=[texts[pk] for pk in first.step_ids],
                                    json_schema=endpoint.supports_json_schema)  # fmt: skip
    body = {"messages": messages, "response_format": RESPONSE_FORMAT}
    tokens = answer_parts(body, SimConfig(), None, None)[4]["completion_tokens"]
    steps = len(first.step_ids)

    def ended() -> tuple[str, bool]:
        succeeded = jobs.filter(status="succeeded")
        rated = [len(r) for r in succeeded.values_list("ratings", flat=True).iterator(2000)]
        whole = sum(1 for n in rated if n == steps)
        findings = ("found_invented", "found_unrecorded_error")
        found = succeeded.aggregate(**{f: Count("pk", filter=Q(**{f: True})) for f in findings})
        line = (f"ratings stored: {whole} of {len(rated)} succeeded jobs with one rating per "
                f"step ({steps} steps each; must be all); findings: {found}")  # fmt: skip
        return line, whole == len(rated)

    seconds_per_token = args.seconds_per_answer / tokens
    return Kind(
        jobs=jobs, tokens=tokens,
        simulator=["--seconds-per-token", repr(seconds_per_token)],
        request=lambda i: {"messages": messages, "response_format": RESPONSE_FORMAT},
        ended=ended,
        note=f"{args.jobs} succeeded traces of {steps} steps ({args.tokens}-token thought), "
        f"judge answers of {tokens} tokens x {seconds_per_token * 1e3:.3f} ms",
    )  # fmt: skip


KINDS = {"expansion": expansion_kind, "rollout": rollout_kind, "judge": judge_kind}

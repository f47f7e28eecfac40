"""The simulator's solve answers padded to a benchmark's length (``solve_tokens``) are
verified exactly as the short ones: the same boxed answer, right or wrong alike."""

import openai
import pytest

from annotator import answer_check
from annotator.models import Problem
from devtools.simulated_solve import build_solution, solve_answer
from devtools.simulated_text import word_count
from devtools.simulator import SimulatedLLM
from expansion.models import RolloutCampaign, RolloutSample, SolvePrompt
from expansion.rollouts.prompts import DEFAULT_PROMPT, build_solve_messages
from expansion.rollouts.verifying import sample_verify

PROBLEMS = (("What is 12+7?", "19"), ("What is 9*8?", "72"), ("What is 40-13?", "27"))
STILL_SYSTEM = (
    "Think between <|begin_of_thought|> and <|end_of_thought|>, then answer between "
    "<|begin_of_solution|> and <|end_of_solution|>, the answer in \\boxed{}."
)


@pytest.fixture(autouse=True, scope="module")
def _comparison_pool_stopped():
    """The verification starts math-verify's pool; its manager thread, left running, would
    meet the later tests' patched time.sleep (test_simulator's management command)."""
    yield
    answer_check._pool.stop()


def prompt_of(thought_format: str) -> SolvePrompt:
    prompt = SolvePrompt(**{**DEFAULT_PROMPT, "thought_format": thought_format})
    if thought_format == "still":
        prompt.system = STILL_SYSTEM
    return prompt


def verified(prompt: SolvePrompt, reference: str, content: str) -> dict:
    """What the rollout verification stores for a sample with this answer (not saved)."""
    sample = RolloutSample(campaign=RolloutCampaign(prompt=prompt), content=content,
                           problem=Problem(reference_answer=reference))  # fmt: skip
    return sample_verify(sample)


@pytest.mark.parametrize("thought_format", ["think", "still"])
def test_a_padded_answer_verifies_as_the_short_one_at_about_the_length_asked(thought_format):
    prompt = prompt_of(thought_format)
    verdicts = set()
    for statement, reference in PROBLEMS:
        messages = build_solve_messages(prompt, statement)
        for index in range(5):
            sample = [index, None]
            short, _ = build_solution(messages, sample)
            padded, thought = build_solution(messages, sample, 1500)
            assert word_count(short) < 60
            assert 1490 <= word_count(padded) <= 1510
            assert word_count(thought) > 1400
            plain, grown = verified(prompt, reference, short), verified(prompt, reference, padded)
            _, right = solve_answer(statement, sample)
            assert grown["verdict"] == plain["verdict"] == ("correct" if right else "incorrect")
            assert grown["answer"] == plain["answer"]
            # Nothing a real long answer would not have: no format, loop or missing reflection.
            flags = ("flag_format", "flag_repetition", "flag_no_reflection", "flag_truncated")
            assert not any(grown[flag] for flag in flags), {f: grown[f] for f in flags}
            assert grown["thought"] == thought
            verdicts.add(grown["verdict"])
    assert verdicts == {"correct", "incorrect"}  # both kinds of sample were padded


def test_the_simulator_pads_solve_answers_only_when_asked():
    messages = build_solve_messages(prompt_of("think"), "What is 12+7?")
    with SimulatedLLM(seconds_per_token=0, target_tokens=300, solve_tokens=800) as sim:
        ai = openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=10)
        padded = ai.chat.completions.create(model="m", messages=messages,
                                            extra_body={"sample_index": 3})  # fmt: skip
        assert 790 <= padded.usage.completion_tokens <= 810
        sim.configure(solve_tokens=0)  # the default: the short answer
        short = ai.chat.completions.create(model="m", messages=messages,
                                           extra_body={"sample_index": 3})  # fmt: skip
    assert short.usage.completion_tokens < 60
    tail = short.choices[0].message.content.rsplit("</think>", 1)[1]
    assert padded.choices[0].message.content.endswith(tail)  # the same solution and answer

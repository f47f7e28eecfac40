"""Solve prompts: the default version, versions immutable once a campaign used them, what a
version lacks, and the messages a sample sends."""

import pytest

from expansion.models import SolvePrompt
from expansion.rollouts.prompts import (
    DEFAULT_PROMPT,
    build_solve_messages,
    solve_prompt_create,
    solve_prompt_default,
    solve_prompt_edit,
    solve_prompt_problems,
)
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def test_the_default_prompt_is_one_version_asking_for_a_think_thought_and_a_boxed_answer():
    prompt = solve_prompt_default()
    assert solve_prompt_default() == prompt
    assert SolvePrompt.objects.filter(content_hash=prompt.content_hash).count() == 1
    assert prompt.thought_format == "think" and prompt.content_hash == prompt.compute_hash()
    assert "\\boxed{}" in prompt.instructions and "<think>" in prompt.instructions
    assert solve_prompt_problems(prompt) == {}


def test_a_deleted_default_is_made_again_as_the_next_version():
    SolvePrompt.objects.filter(name=DEFAULT_PROMPT["name"]).delete()
    solve_prompt_create(name="solve", system="", instructions="x {problem} \\boxed <think></think>")
    prompt = solve_prompt_default()
    assert prompt.version == 2 and prompt.instructions == DEFAULT_PROMPT["instructions"]


def test_an_edit_changes_an_unused_version_in_place_and_a_used_one_into_a_new_version():
    prompt = solve_prompt_create(name="mine", system="s", instructions="a {problem} \\boxed{}")
    edited = solve_prompt_edit(prompt_id=prompt.pk, system="t")
    assert edited.pk == prompt.pk and edited.system == "t"
    assert edited.content_hash == edited.compute_hash() != prompt.content_hash
    CampaignFactory(prompt=edited)
    newer = solve_prompt_edit(prompt_id=edited.pk, instructions="b {problem} \\boxed{}")
    assert newer.pk != edited.pk and newer.version == edited.version + 1
    assert (newer.system, newer.instructions) == ("t", "b {problem} \\boxed{}")
    edited.refresh_from_db()
    assert edited.instructions == "a {problem} \\boxed{}"  # what the campaign used stays
    assert solve_prompt_edit(prompt_id=newer.pk, system="t") == newer  # no change, no version


def test_what_a_prompt_lacks_is_said_by_field():
    lacking = SolvePrompt(system="", instructions="Solve it.", thought_format="still")
    problems = solve_prompt_problems(lacking)
    assert "{problem}" in problems["instructions"] and "\\boxed" in problems["instructions"]
    assert "<|begin_of_thought|>" in problems["thought_format"]


def test_the_statement_goes_where_the_prompt_says_braces_and_all():
    prompt = SolvePrompt(system="Be careful.", instructions="\\boxed{} below:\n{problem}")
    assert build_solve_messages(prompt, " Find $\\{x\\}$. ") == [
        {"role": "system", "content": "Be careful."},
        {"role": "user", "content": "\\boxed{} below:\nFind $\\{x\\}$."},
    ]

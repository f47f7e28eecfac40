import pytest

from expansion.models import PromptVersion
from expansion.prompts import prompt_active

pytestmark = pytest.mark.django_db


def test_admins_manage_users_and_roles(api_as, admin_user, reviewer_user):
    api = api_as(admin_user)
    created = api.post("/api/users/", {"username": "newbie", "role": "annotator",
                                       "password": "a-Long-pass-123"}, format="json")  # fmt: skip
    assert created.status_code == 201 and created.json()["roles"] == ["annotator"]
    assert "password" not in created.json()
    changed = api.patch(f"/api/users/{created.json()['id']}/", {"role": "reviewer"}, format="json")
    assert changed.json()["roles"] == ["reviewer"]
    weak = api.post("/api/users/", {"username": "x", "role": "admin", "password": "123"},
                    format="json")  # fmt: skip
    assert weak.status_code == 400 and "password" in weak.json()
    assert api_as(reviewer_user).get("/api/users/").status_code == 403


def test_admins_manage_endpoints_without_keys(api_as, admin_user, reviewer_user, settings):
    settings.LLM_API_KEY_NAMES = frozenset({"LLM_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY"})
    api = api_as(admin_user)
    deepseek = {"name": "deepseek", "base_url": "https://api.deepseek.com/v1",
                "model": "deepseek-reasoner", "api_key_env": "DEEPSEEK_API_KEY"}  # fmt: skip
    created = api.post("/api/endpoints/", deepseek, format="json")
    assert created.status_code == 201 and created.json()["api_key_env"] == "DEEPSEEK_API_KEY"
    bad = api.post("/api/endpoints/", {"name": "x", "base_url": "https://a/v1", "model": "m",
                   "api_key_env": "sk-live-123"}, format="json")  # fmt: skip
    assert bad.status_code == 400 and "api_key_env" in bad.json()
    assert api_as(reviewer_user).get("/api/endpoints/").status_code == 403


@pytest.mark.parametrize(
    "secret", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY"]
)
def test_only_listed_key_variables_can_be_named(api_as, admin_user, settings, secret):
    """The platform's own secrets and other services' credentials, even named like keys."""
    settings.LLM_API_KEY_NAMES = frozenset({"LLM_API_KEY", "OPENAI_API_KEY", "SECRET_KEY"})
    api = api_as(admin_user)
    body = {"name": "e", "base_url": "https://evil.example/v1", "model": "m"}
    created = api.post("/api/endpoints/", {**body, "api_key_env": secret}, format="json")
    assert created.status_code == 400
    assert "add it to LLM_API_KEY_NAMES" in str(created.json()["api_key_env"])
    good = api.post("/api/endpoints/", {**body, "api_key_env": "OPENAI_API_KEY"}, format="json")
    changed = api.patch(f"/api/endpoints/{good.json()['id']}/", {"api_key_env": secret},
                        format="json")  # fmt: skip
    assert changed.status_code == 400 and "api_key_env" in changed.json()


def test_prompt_versions_are_created_never_edited(api_as, admin_user):
    base = prompt_active()
    api = api_as(admin_user)
    fields = {name: getattr(base, name) for name in PromptVersion.CONTENT_FIELDS}
    created = api.post("/api/prompt-versions/", {**fields, "name": "journey", "granularity": "",
                       "is_active": True}, format="json")  # fmt: skip
    assert created.status_code == 201 and created.json()["version"] == 2
    assert PromptVersion.objects.get(is_active=True).version == 2
    assert api.patch(f"/api/prompt-versions/{base.pk}/", {"system": "x"}).status_code == 405


def test_a_prompt_version_must_ask_for_a_splittable_structure_and_a_boxed_answer(
    api_as, admin_user
):
    base = prompt_active()
    api = api_as(admin_user)
    fields = {name: getattr(base, name) for name in PromptVersion.CONTENT_FIELDS}
    unsplittable = {**fields, "system": "Think out loud about the record.",
                    "invariants": "Invent nothing.", "target_tokens_min": 3000,
                    "target_tokens_max": 1500}  # fmt: skip
    refused = api.post("/api/prompt-versions/", unsplittable, format="json")
    assert refused.status_code == 400
    errors = refused.json()
    assert "<|begin_of_thought|>" in errors["system"][0] and "\\boxed{}" in errors["invariants"][0]
    assert "target_tokens_max" in errors
    assert PromptVersion.objects.count() == 1  # nothing was created
    # <think> tags are a structure the code splits too.
    think = {**fields, "system": "Reason inside <think> and </think>, then answer."}
    assert api.post("/api/prompt-versions/", think, format="json").status_code == 201

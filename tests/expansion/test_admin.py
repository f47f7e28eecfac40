import pytest

from expansion import services
from expansion.models import LLMEndpoint, PromptVersion
from expansion.prompts import prompt_active

pytestmark = pytest.mark.django_db


def prompt_form(prompt, **changes):
    data = {name: getattr(prompt, name) for name in PromptVersion.CONTENT_FIELDS}
    return {**data, "name": prompt.name, **changes}


def test_editing_a_used_prompt_version_saves_a_new_one(client_as, admin_user, submitted, endpoint):
    prompt = prompt_active()
    services.traces_request(annotation=submitted, endpoint=endpoint, prompt=prompt)
    client = client_as(admin_user)
    response = client.post(
        f"/admin/expansion/promptversion/{prompt.pk}/change/",
        prompt_form(prompt, granularity="Tiny steps.", make_active="on"),
    )
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert prompt.granularity != "Tiny steps." and not prompt.is_active
    new = PromptVersion.objects.get(version=2)
    assert new.granularity == "Tiny steps." and new.is_active
    assert new.content_hash != prompt.content_hash


def test_an_unused_version_is_edited_in_place(client_as, admin_user):
    prompt = prompt_active()
    client_as(admin_user).post(
        f"/admin/expansion/promptversion/{prompt.pk}/change/",
        prompt_form(prompt, granularity="Small."),
    )
    prompt.refresh_from_db()
    assert prompt.granularity == "Small." and PromptVersion.objects.count() == 1
    assert prompt.content_hash == prompt.compute_hash()


def test_endpoint_admin_never_shows_a_key(client_as, admin_user, endpoint, monkeypatch):
    monkeypatch.setenv("SIM_KEY", "sk-very-secret-value")
    endpoint.api_key_env = "SIM_KEY"
    endpoint.save()
    body = client_as(admin_user).get(f"/admin/expansion/llmendpoint/{endpoint.pk}/change/")
    assert b"SIM_KEY" in body.content and b"sk-very-secret-value" not in body.content


def test_marking_an_endpoint_default_in_the_admin_unmarks_the_other(client_as, admin_user):
    old = LLMEndpoint.objects.create(name="old", base_url="https://a/v1", model="m")
    old.is_default = True
    old.save()
    form = {"name": "new", "base_url": "https://b.example/v1", "model": "m", "api_key_env": "",
            "temperature": 0.7, "top_p": 1, "max_tokens": 4096, "max_in_flight": 8,
            "price_input_per_million": 0, "price_output_per_million": 0,
            "timeout_seconds": 600, "batch_discount_percent": 50, "is_active": "on",
            "is_default": "on"}  # fmt: skip
    response = client_as(admin_user).post("/admin/expansion/llmendpoint/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    old.refresh_from_db()
    assert not old.is_default and LLMEndpoint.objects.get(name="new").is_default
    assert services.endpoint_default().name == "new"


def test_the_admin_refuses_a_key_variable_not_on_the_allow_list(client_as, admin_user):
    form = {"name": "hf", "base_url": "https://evil.example/v1", "model": "m",
            "api_key_env": "HF_TOKEN", "temperature": 0.7, "top_p": 1, "max_tokens": 4096,
            "max_in_flight": 8, "price_input_per_million": 0, "price_output_per_million": 0,
            "timeout_seconds": 600, "is_active": "on"}  # fmt: skip
    response = client_as(admin_user).post("/admin/expansion/llmendpoint/add/", form)
    assert response.status_code == 200  # the form again, with the error
    assert "add it to LLM_API_KEY_NAMES" in response.content.decode()
    assert not LLMEndpoint.objects.filter(name="hf").exists()


def test_the_admin_refuses_a_prompt_without_a_boxed_answer(client_as, admin_user):
    prompt = prompt_active()
    unboxed = {field: getattr(prompt, field).replace("\\boxed", "a box")
               for field in ("system", "invariants")}  # fmt: skip
    response = client_as(admin_user).post(
        f"/admin/expansion/promptversion/{prompt.pk}/change/", prompt_form(prompt, **unboxed)
    )
    assert response.status_code == 200  # the form again, with the error
    assert "the checks read it" in response.content.decode()
    prompt.refresh_from_db()
    assert "\\boxed" in prompt.invariants


def test_editing_the_active_version_without_the_checkbox_keeps_it_active(
    client_as, admin_user, submitted, endpoint
):
    prompt = prompt_active()
    services.traces_request(annotation=submitted, endpoint=endpoint, prompt=prompt)
    client = client_as(admin_user)
    form = client.get(f"/admin/expansion/promptversion/{prompt.pk}/change/").content.decode()
    assert "Make this version active" in form
    assert (
        'name="make_active"' in form and "checked" not in form.split('name="make_active"')[1][:40]
    )
    response = client.post(
        f"/admin/expansion/promptversion/{prompt.pk}/change/",
        prompt_form(prompt, granularity="Tiny steps."),
        follow=True,
    )
    new = PromptVersion.objects.get(version=2)
    prompt.refresh_from_db()
    assert new.granularity == "Tiny steps." and not new.is_active and prompt.is_active
    assert PromptVersion.objects.filter(is_active=True).count() == 1
    page = response.content.decode()
    assert "your edit was saved as journey v2" in page
    assert "Journey v2 is not the active version; new submissions still use journey v1" in page


def test_the_change_list_and_the_form_say_which_version_is_active(client_as, admin_user):
    v1 = prompt_active()
    v2 = services.prompt_version_create(
        **{name: getattr(v1, name) for name in PromptVersion.CONTENT_FIELDS}
    )
    client = client_as(admin_user)
    listing = client.get("/admin/expansion/promptversion/").content.decode()
    rows = {row.split("</th>")[0].rsplit(">", 2)[-2].split("<")[0]: row
            for row in listing.split("<tr")[1:] if "</th>" in row}  # fmt: skip
    assert "Active: new submissions use it" in rows["journey v1"]
    assert "Active: new submissions use it" not in rows["journey v2"]
    form = client.get(f"/admin/expansion/promptversion/{v2.pk}/change/").content.decode()
    assert "Not active. The active version is journey v1." in form
    form = client.get(f"/admin/expansion/promptversion/{v1.pk}/change/").content.decode()
    assert "Active: new submissions are expanded with this version." in form


def test_a_version_added_in_the_admin_is_active_only_when_ticked(client_as, admin_user):
    v1 = prompt_active()
    client = client_as(admin_user)
    added = client.post("/admin/expansion/promptversion/add/", prompt_form(v1, granularity="A."))
    assert added.status_code == 302
    v2 = PromptVersion.objects.get(version=2)
    assert not v2.is_active and PromptVersion.objects.get(is_active=True) == v1
    client.post("/admin/expansion/promptversion/add/",
                prompt_form(v1, granularity="B.", make_active="on"))  # fmt: skip
    v3 = PromptVersion.objects.get(version=3)
    assert list(PromptVersion.objects.filter(is_active=True)) == [v3]
    assert v3.content_hash == v3.compute_hash()


def test_the_database_holds_one_active_prompt_at_most(db):
    from django.db import IntegrityError, transaction

    v1 = prompt_active()
    v2 = services.prompt_version_create(system=v1.system, invariants=v1.invariants)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromptVersion.objects.filter(pk=v2.pk).update(is_active=True)
    services.prompt_activate(prompt_id=v2.pk)
    assert list(PromptVersion.objects.filter(is_active=True)) == [v2]

"""Bodies an API cannot read answer 400 with a JSON message, never a 500 or an HTML page."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _post(body: bytes, content_type: str = "application/json"):
    return Client().post("/api/auth/token/", data=body, content_type=content_type)


def test_a_body_nested_100000_arrays_deep_answers_400():
    response = _post(b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "nested" in response.json()["detail"]


def test_a_body_nested_past_the_bound_but_readable_by_python_also_answers_400():
    response = _post(
        json.dumps(
            {"username": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}
        ).encode()
    )
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_a_body_over_the_size_limit_answers_json(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = _post(json.dumps({"username": "x" * 5000, "password": "y"}).encode())
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "1 KB" in response.json()["detail"] or "1024" in response.json()["detail"]


def test_an_ordinary_bad_body_still_answers_400_json():
    response = _post(b"{not json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]

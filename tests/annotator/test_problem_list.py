import pytest

from tests.factories import AnnotationFactory, CampaignFactory, DifficultyFactory, ProblemFactory

pytestmark = pytest.mark.django_db


def test_annotators_cannot_browse_the_bank(client_as, annotator_user, api_as):
    assert client_as(annotator_user).get("/problems/").status_code == 403
    assert api_as(annotator_user).get("/api/problems/").status_code == 403


def test_reviewer_sees_rendered_statements_with_counts(client_as, reviewer_user):
    ProblemFactory(statement="Find **all** $x_1$ with $x_1^2 = 4$.")
    response = client_as(reviewer_user).get("/problems/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 problem" in body
    assert "<strong>all</strong>" in body
    assert "$x_1^2 = 4$" in body  # left intact for KaTeX


def test_statements_are_sanitized(client_as, reviewer_user):
    ProblemFactory(statement='<script>alert("x")</script><img src=x onerror="alert(1)"> ok')
    body = client_as(reviewer_user).get("/problems/").content.decode()
    assert "<script>alert" not in body
    assert "onerror" not in body
    assert "ok" in body


def test_filters_search_source_subject_level_and_status(client_as, reviewer_user):
    target = ProblemFactory(source="bank", subject="Geometry", level=4, statement="A triangle ABC")
    ProblemFactory(source="bank", subject="Geometry", level=3, statement="A triangle DEF")
    ProblemFactory(source="other", subject="Algebra", level=4, statement="Solve a triangle GHI")
    client = client_as(reviewer_user)

    def ids(**params):
        response = client.get("/problems/", params)
        return [p.external_id for p in response.context["page"]]

    assert ids(q="triangle", source="bank", subject="Geometry", level=4) == [target.external_id]
    assert len(ids(q="TRIANGLE")) == 3
    assert len(ids(source="other")) == 1
    assert ids(level="not-a-number") != []  # a bad value is ignored, not an error page

    AnnotationFactory(problem=target, status="submitted")
    assert ids(status="submitted") == [target.external_id]
    assert target.external_id not in ids(status="none")
    assert len(ids(status="none")) == 2


def test_htmx_request_gets_only_the_results_fragment(client_as, reviewer_user):
    ProblemFactory()
    response = client_as(reviewer_user).get(
        "/problems/", headers={"HX-Request": "true", "HX-Target": "problem-results"}
    )
    body = response.content.decode()
    assert "<html" not in body
    assert "1 problem" in body


def test_pages_of_25_with_a_bounded_number_of_queries(
    client_as, reviewer_user, django_assert_max_num_queries
):
    problems = ProblemFactory.create_batch(60)
    campaign = CampaignFactory()
    for problem in problems:
        DifficultyFactory(problem=problem, campaign=campaign, correct=3)
    client = client_as(reviewer_user)
    # 12: the contamination badges of the page (one prefetch), the benchmark menu count and
    # the campaign menu; the pass rates come with the page's problems, in the same query.
    with django_assert_max_num_queries(12):
        response = client.get("/problems/", {"page": 3, "sort": "pass_asc"})
    assert len(response.context["page"]) == 10
    body = response.content.decode()
    assert "Page 3 of 3" in body
    assert body.count("3 of 16") == 10


def test_api_lists_and_filters_problems(api_as, admin_user):
    ProblemFactory(subject="Geometry", level=5)
    ProblemFactory(subject="Algebra", level=1)
    api = api_as(admin_user)
    data = api.get("/api/problems/", {"subject": "Geometry"}).json()
    assert data["count"] == 1
    assert data["results"][0]["level"] == 5
    detail = api.get(f"/api/problems/{data['results'][0]['id']}/").json()
    assert detail["subject"] == "Geometry"
    assert api.get("/api/problems/", {"level": "x"}).status_code == 400


def test_api_errors_say_what_is_wrong_and_lists_can_be_ordered(api_as, admin_user):
    ProblemFactory(level=1)
    ProblemFactory(level=5)
    api = api_as(admin_user)
    levels = [
        p["level"] for p in api.get("/api/problems/", {"ordering": "-level"}).json()["results"]
    ]
    assert levels == [5, 1]
    error = api.get("/api/problems/", {"level": "x"}).json()
    assert error["detail"] == "Invalid request: level: Enter a whole number." and "level" in error

import pytest

from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_reviewer_logs_in_and_browses_rendered_problems(page, log_in, reviewer_user):
    ProblemFactory(statement=r"Evaluate $\frac{1}{2} + \frac{1}{3}$ exactly.", subject="Algebra")
    ProblemFactory(statement="How many triangles are in the figure?", subject="Geometry")

    log_in("rev")
    page.click('header nav a:text-is("Problems")')
    page.wait_for_url("**/problems/")
    assert page.locator(".problem").count() == 2
    page.locator(".problem .katex").first.wait_for()  # LaTeX rendered by KaTeX

    page.fill("input[name=q]", "triangles")
    page.locator(".count", has_text="1 problem").wait_for()
    assert "q=triangles" in page.url  # the filtered list has its own address
    assert page.locator(".problem").count() == 1
    assert page.console_errors == []


def test_script_in_a_statement_stays_inert(page, log_in, reviewer_user):
    ProblemFactory(
        statement='Hi <script>alert("s")</script><img src=x onerror="alert(\'i\')"> '
        "[x](javascript:alert('j')) $<img src=y onerror=alert('m')>$"
    )
    log_in("rev")
    page.goto("/problems/")
    page.locator(".problem").first.wait_for()
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator(".problem img").count() == 0


def test_unknown_user_is_told_the_login_failed(page, db):
    page.goto("/problems/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.click("form:not(.language-picker) button[type=submit]")
    assert page.locator("[role=alert]").inner_text().startswith("Your username and password")

"""The API docs page linked from every page lists the documented operations in Chromium."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_page_lists_the_operations(page, log_in, annotator_user):
    log_in("ann")
    page.click("header nav >> text=API")
    page.wait_for_url("**/api/docs/")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/traces/" in paths and "/api/annotations/{id}/submit/" in paths
    assert not [e for e in page.console_errors if "Content Security" in e or "Refused" in e]

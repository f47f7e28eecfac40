"""The interface in Chinese: picked from the browser, overridden by the user's choice."""

import re
from pathlib import Path

from django.conf import settings
from django.utils import translation

from annotator.models import UserLanguage
from tests.factories import AnnotationFactory, TraceFactory

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


def test_english_is_the_default(client_as, annotator_user):
    body = client_as(annotator_user).get("/").content.decode()
    assert "Next problem" in body and "下一道题目" not in body
    assert '<html lang="en">' in body


def test_the_browser_language_shows_the_home_page_in_chinese(client_as, annotator_user):
    response = client_as(annotator_user).get("/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    body = response.content.decode()
    assert "下一道题目" in body and "退出登录" in body and "Next problem" not in body
    assert '<html lang="zh-hans">' in body


def test_the_annotation_page_buttons_are_in_chinese(client_as, annotator_user):
    annotation = AnnotationFactory(annotator=annotator_user)
    body = (
        client_as(annotator_user)
        .get(f"/annotations/{annotation.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans")
        .content.decode()
    )
    for text in ("提交", "+ 添加一步", "释放此题目", "标注指南", "思考过程"):
        assert text in body, text


def test_the_review_page_buttons_are_in_chinese(client_as, reviewer_user):
    trace = TraceFactory()
    client = client_as(reviewer_user)
    body = client.get(f"/review/{trace.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "通过" in body and "拒绝" in body and "下一条轨迹" in body
    steps = client.get(f"/review/{trace.pk}/?mode=steps", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "返回决定" in steps.content.decode()


def test_the_users_choice_wins_over_the_browser(client, annotator_user):
    UserLanguage.objects.create(user=annotator_user, language="en")
    client.force_login(annotator_user)
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "Next problem" in body and "下一道题目" not in body


def test_the_picker_stores_the_choice_and_returns_to_the_page(client_as, annotator_user):
    client = client_as(annotator_user)
    response = client.post("/accounts/language/", {"language": "zh-hans", "next": "/problems/"})
    assert response.status_code == 302 and response["Location"] == "/problems/"
    assert UserLanguage.objects.get(user=annotator_user).language == "zh-hans"
    assert "下一道题目" in client.get("/").content.decode()
    # A fresh login on another device finds the stored choice.
    client.logout()
    client.force_login(annotator_user)
    assert "下一道题目" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_the_picker_refuses_an_unknown_language_and_a_foreign_next(client_as, annotator_user):
    client = client_as(annotator_user)
    bad = client.post("/accounts/language/", {"language": "xx"})
    assert bad.status_code == 400 and "xx" in bad.content.decode()
    away = client.post("/accounts/language/", {"language": "en", "next": "https://evil.example/"})
    assert away["Location"] == "/"


def test_the_login_page_follows_the_picked_cookie(client):
    client.post("/accounts/language/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert "用户名" in client.get("/accounts/login/").content.decode()


def _po_entries(text):
    """(msgid, msgstrs, fuzzy, context) of each entry of a .po file, header left out."""
    entries = []
    for block in text.split("\n\n"):
        strings = {}
        key = None
        for line in block.splitlines():
            match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d\])?) "(.*)"$', line)
            if match:
                key = match.group(1)
                strings[key] = match.group(2)
            elif line.startswith('"') and key:
                strings[key] += line[1:-1]
        if strings.get("msgid"):
            msgstrs = [v for k, v in strings.items() if k.startswith("msgstr")]
            entries.append((strings["msgid"], msgstrs, "fuzzy" in block, strings.get("msgctxt")))
    return entries


def _po_unescaped(text):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), text)


def test_every_message_of_the_catalogue_is_translated():
    entries = _po_entries((CATALOGUE / "django.po").read_text(encoding="utf-8"))
    assert len(entries) > 100
    for msgid, msgstrs, fuzzy, _context in entries:
        assert not fuzzy, msgid
        assert msgstrs and all(msgstrs), f"untranslated: {msgid}"


def test_the_compiled_catalogue_is_up_to_date_with_the_po():
    """Every message of the .po reads as its Chinese through Django, so a .po edited
    without compilemessages fails here."""
    entries = _po_entries((CATALOGUE / "django.po").read_text(encoding="utf-8"))
    with translation.override("zh-hans"):
        for msgid, msgstrs, _fuzzy, context in entries:
            if "%(" in msgid or "\\" in msgid:
                continue
            wanted = _po_unescaped(msgstrs[0])
            if context:
                assert translation.pgettext(context, msgid) == wanted, msgid
            else:
                assert translation.gettext(msgid) == wanted, msgid

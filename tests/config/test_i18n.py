"""The interface in Chinese: picked from the browser, overridden by the user's choice."""

import re
from pathlib import Path

from django.conf import settings
from django.utils import translation

from annotator.models import UserLanguage, WorkspaceSettings
from expansion.models import TraceNorm
from tests.factories import (
    AnnotationFactory,
    CampaignFactory,
    DifficultyFactory,
    SampleFactory,
    TraceFactory,
)

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


ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


def _shows(body, chinese, english):
    """The page shows each Chinese text and none of the English ones it replaces."""
    for text in chinese:
        assert text in body, text
    for text in english:
        assert text not in body, text


def test_the_analytics_dashboard_is_in_chinese(client_as, reviewer_user):
    TraceFactory()
    body = client_as(reviewer_user).get("/analytics/", **ZH).content.decode()
    _shows(body, ["语料分析", "漏斗", "成本与 token", "轨迹画像", "今天", "待审核", "人员"],
           ["Corpus analytics", "Funnel", "Cost and tokens", "Trace profile", "Today",
            "Awaiting review", "Annotators", "Figures computed at"])  # fmt: skip


def test_the_comparison_and_agreement_pages_are_in_chinese(client_as, reviewer_user):
    TraceFactory()
    client = client_as(reviewer_user)
    compare = client.get("/analytics/compare/", **ZH).content.decode()
    _shows(compare, ["对比提示词版本或模型", "返回仪表盘", "通过率", "平均步骤覆盖率"],
           ["Compare prompt versions or models", "Back to the dashboard", "Approval rate",
            "Mean step coverage"])  # fmt: skip
    agreement = client.get("/analytics/agreement/", **ZH).content.decode()
    _shows(agreement, ["步骤评分的一致性", "人工对比人工", "正确性"],
           ["Agreement on step ratings", "Person vs person", "Correctness"])  # fmt: skip


def test_the_analytics_trace_list_and_its_form_errors_are_in_chinese(client_as, reviewer_user):
    TraceFactory()
    client = client_as(reviewer_user)
    body = client.get("/analytics/traces/", **ZH).content.decode()
    _shows(body, ["包含标记词", "不含标记词", "返回仪表盘", "1 条轨迹", "任意"],
           ["Has marker", "Lacks marker", "Back to the dashboard", "1 trace<"])  # fmt: skip
    refused = client.get("/analytics/traces/", {"has": "Eureka"}, **ZH)
    assert refused.status_code == 400
    _shows(refused.content.decode(), ["“Eureka”不是已统计的标记词"], ["is not a counted marker"])


def test_the_expansion_job_pages_are_in_chinese(client_as, admin_user):
    trace = TraceFactory()
    client = client_as(admin_user)
    jobs = client.get("/traces/", **ZH).content.decode()
    _shows(jobs, ["扩写任务", "任意端点", "创建日期起", "1 个任务"],
           ["Expansion jobs", "Any endpoint", "Created since", "1 job<"])  # fmt: skip
    detail = client.get(f"/traces/{trace.pk}/", **ZH).content.decode()
    _shows(detail, ["发送给模型的请求", "成本、延迟", "结构", "思考与解答"],
           ["Request sent to the model", "Cost, latency", "Structure", "Boxed answer"])  # fmt: skip


def test_the_rest_of_the_review_page_is_in_chinese(client_as, reviewer_user):
    checks = {"matches_reference": True, "coverage_mean": 1.0, "reflection_count": 2,
              "reflection_density": 1.25, "leakage": [], "split_ok": False,
              "format": ["no_boxed"]}  # fmt: skip
    trace = TraceFactory(checks=checks)
    client = client_as(reviewer_user)
    body = client.get(f"/review/{trace.pk}/", **ZH).content.decode()
    _shows(body, ["泄露：", "个反思标记词", "思考与解答未分开", "没有 \\boxed{} 答案",
                  "标注员应该修改什么？", "快捷键："],
           ["Leakage:", "reflection markers", "not split", "answer</span>",
            "What should the annotator change?", "Keys:"])  # fmt: skip
    steps = client.get(f"/review/{trace.pk}/?mode=steps", **ZH).content.decode()
    _shows(steps, ["正确性", "忠实度", "在第一个错误步骤处停止", "第 1 步",
                   'data-msg-offline="未保存（连接问题）；正在重试……"'],
           ["Correctness", "Faithfulness", "Stop at the first wrong step", "Step 1<",
            "retrying…"])  # fmt: skip


def test_review_messages_and_refusals_are_in_chinese(client_as, reviewer_user):
    trace = TraceFactory()
    client = client_as(reviewer_user)
    refused = client.post(f"/review/{trace.pk}/decide/", {"decision": "reject"}, **ZH)
    assert refused.status_code == 400
    _shows(refused.content.decode(), ["拒绝需要选择一个理由。"], ["needs a reason"])
    done = client.post(f"/review/{trace.pk}/decide/", {"decision": "approve"}, follow=True, **ZH)
    _shows(done.content.decode(), [f"轨迹 #{trace.pk}：已记录“通过”。"], ["recorded."])


def test_the_problem_page_body_is_in_chinese(client_as, reviewer_user):
    problem = AnnotationFactory().problem
    body = client_as(reviewer_user).get(f"/problems/{problem.pk}/", **ZH).content.decode()
    _shows(body, ["近似重复", "没有已注册的基准包含这道题目。", "全部题目"],
           ["Near-duplicates", "No registered benchmark contains this problem.",
            "all problems"])  # fmt: skip


def test_a_problems_pass_rates_are_in_chinese(client_as, reviewer_user):
    difficulty = DifficultyFactory(correct=3, verified=4, samples=4)
    body = client_as(reviewer_user).get(f"/problems/{difficulty.problem_id}/", **ZH)
    _shows(body.content.decode(), ["样本说明了什么", "通过率", "3 / 4"],
           ["What the samples tell", "Pass rate", "3 of 4"])  # fmt: skip


def test_a_read_only_annotation_and_the_editor_script_words_are_in_chinese(
    client_as, reviewer_user, annotator_user
):
    annotation = AnnotationFactory(status="submitted")
    body = client_as(reviewer_user).get(f"/annotations/{annotation.pk}/", **ZH).content.decode()
    _shows(body, ["的思考过程（版本", "用时：", "参考答案："],
           ["Thought process by", "Time spent", "Reference answer:"])  # fmt: skip
    own = AnnotationFactory(annotator=annotator_user)
    editor = client_as(annotator_user).get(f"/annotations/{own.pk}/", **ZH).content.decode()
    _shows(editor, ['data-msg-characters="%(used)s / %(max)s 个字符"'], ["%(max)s characters"])


def test_the_new_pages_stay_in_english_by_default(client_as, reviewer_user):
    TraceFactory()
    body = client_as(reviewer_user).get("/analytics/").content.decode()
    assert "Corpus analytics" in body and "语料分析" not in body


def test_the_rest_of_the_review_queue_and_the_flag_names_are_in_chinese(client_as, reviewer_user):
    TraceFactory(flag_too_short=True)
    body = client_as(reviewer_user).get("/review/", **ZH).content.decode()
    _shows(body, ["学科", "创建日期起", "思考中的文字", "条符合筛选条件", "模型 · 提示词",
                  "答案不一致", "过短"],
           ["Subject", "Created since", "Text in the thought", "match the filters",
            "Model · prompt", "Answer mismatch", "too short<"])  # fmt: skip


def test_the_campaign_comparison_and_its_samples_are_in_chinese(client_as, reviewer_user):
    first, second = CampaignFactory(name="round one"), CampaignFactory(name="round two")
    for campaign, verdict in ((first, "correct"), (second, "incorrect")):
        SampleFactory(campaign=campaign, verdict=verdict)
    client = client_as(reviewer_user)
    body = client.get("/analytics/campaigns/", {"a": first.pk, "b": second.pk}, **ZH)
    _shows(body.content.decode(),
           ["比较采样轮次", "每个正确样本的成本", "各学科的通过率", "已验证 1 个中正确 1 个"],
           ["Compare rollout campaigns", "Cost per correct sample", "Pass rate per subject",
            "1 of 1 verified", "Figures computed at"])  # fmt: skip
    body = client.get(f"/analytics/campaigns/{first.pk}/samples/", {"verdict": "incorrect"}, **ZH)
    _shows(body.content.decode(), ["round one 的样本", "没有匹配的样本。", "返回对比"],
           ["Samples of round one", "No sample matches.", "Back to the comparison"])  # fmt: skip


def test_the_overthinking_norm_by_pass_rate_is_in_chinese(client_as, reviewer_user):
    campaign = CampaignFactory()
    trace = TraceFactory()
    DifficultyFactory(problem=trace.annotation.problem, campaign=campaign, correct=16)
    WorkspaceSettings.objects.update_or_create(pk=1, defaults={"lease_campaign": campaign.pk})
    TraceNorm.objects.create(kind="tokens_pass", key=f"{campaign.pk}:4", median=500, traces=30,
                             computed_at="2026-01-01T00:00:00Z")  # fmt: skip
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/", **ZH).content.decode()
    _shows(body, ["通过率 80–100%：中位数 500 个 token（基于 30 条轨迹）"],
           ["Pass rate 80–100%: median"])  # fmt: skip


def test_the_campaign_pages_refusals_are_in_chinese(client_as, reviewer_user):
    campaign = CampaignFactory()
    SampleFactory(campaign=campaign)
    client = client_as(reviewer_user)
    body = client.get("/analytics/campaigns/", {"a": "999999"}, **ZH).content.decode()
    _shows(body, ["没有 id 为“999999”且有样本的采样轮次。"], ["No campaign with samples"])
    refused = client.get(f"/analytics/campaigns/{campaign.pk}/samples/", {"level": "x"}, **ZH)
    assert refused.status_code == 400
    _shows(refused.content.decode(), ["难度是一个数字或“none”。"], ["A level is a number"])

"""The one marker module: the list per language, counting, and positions for highlighting."""

from expansion.markers import MARKERS, marker_counts, marker_spans, markers_for


def test_the_language_list_is_english_by_default_and_for_a_language_without_one():
    assert markers_for() == MARKERS["en"] == markers_for("xx")
    assert "wait" in markers_for("en") and "let me double-check" in markers_for("en")


def test_markers_count_case_insensitively_as_whole_words():
    counts = marker_counts("Wait. WAIT, waiting is not await. Hmm; let me\ncheck.")
    assert counts["wait"] == 2 and counts["hmm"] == 1 and counts["let me check"] == 1
    assert counts["alternatively"] == 0  # every marker of the list, zeros included


def test_a_marker_is_counted_wherever_a_whole_word_match_begins():
    # "xa b a" is no match (inside a word), but the "a b a" that begins within it is; a "b"
    # inside a counted "a b a" is a part of it, not a marker of its own.
    assert marker_counts("xa b a b a. A  B\nA", ["a b a", "b"]) == {"a b a": 2, "b": 1}
    assert marker_counts("subwait wait_ waits wait", ["wait"]) == {"wait": 1}


def test_any_list_of_phrases_is_counted_the_same_way():
    counts = marker_counts("So, therefore... So be it. Also", ["So", "Therefore", "Consider"])
    assert counts == {"So": 2, "Therefore": 1, "Consider": 0}


def test_spans_leave_math_alone_and_take_the_longest_marker():
    text = r"Wait: $\text{wait}$, $$wait$$, \(wait\), \[wait\]; let me double-check, hmm."
    found = [text[start:end] for start, end in marker_spans(text)]
    assert found == ["Wait", "let me double-check", "hmm"]
    assert marker_spans("Therefore so", ["so"]) == [(10, 12)]

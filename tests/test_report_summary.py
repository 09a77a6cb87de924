"""The report's opening paragraph, generated from hand-made prediction rows of two defenders."""

from aot.eval.paired import PAIRED_METRICS, paired_bootstrap
from aot.report import change_summary, render_html


def _mc(bench, correct, meta=None):
    """Multiple-choice rows (true answer A), one per entry of ``correct``."""
    return [{"bench": bench, "text": f"q{i}", "options": ["red", "blue"], "answer": "A", "pred": "A" if ok else "B",
             "correct": ok, "meta": dict(meta[i]) if meta else {}} for i, ok in enumerate(correct)]


def _pope(preds):
    """POPE adversarial rows: the first half has the answer yes (A), the rest no (B)."""
    n = len(preds)
    return [{"bench": "pope", "text": f"p{i}", "options": ["yes", "no"], "answer": "A" if i < n // 2 else "B", "pred": p,
             "correct": p == ("A" if i < n // 2 else "B"), "meta": {"subset": "adversarial"}} for i, p in enumerate(preds)]


ROBUST_META = [{"base": b, "op": op} for b in range(4) for op in ("clean", "add", "patch")]


def _results(rows):
    return {"benchmarks": {b: {} for b in {r["bench"] for r in rows}}, "predictions": rows}


def test_change_summary_from_hand_made_rows():
    # V*: 5 of 20 right -> 19 of 20 right (every base-right item stays right): a clear rise
    base_vstar, final_vstar = [i < 5 for i in range(20)], [i < 19 for i in range(20)]
    # POPE: every answer right -> "no" everywhere (F1 drops to 0): a clear fall
    base_pope, final_pope = _pope(["A"] * 10 + ["B"] * 10), _pope(["B"] * 20)
    # clean and robust: the same answers before and after: no measurable change
    clean = [i % 2 == 0 for i in range(10)]
    robust = [r["op"] != "patch" for r in ROBUST_META]
    base = _results(_mc("vstar", base_vstar) + base_pope + _mc("clean", clean) + _mc("robust", robust, ROBUST_META))
    final = _results(_mc("vstar", final_vstar) + final_pope + _mc("clean", clean) + _mc("robust", robust, ROBUST_META))
    text = change_summary(base, final)

    d = paired_bootstrap([(_mc("vstar", base_vstar), _mc("vstar", final_vstar))], PAIRED_METRICS["vstar/greedy/accuracy"])
    assert d["lo"] > 0
    assert f"V*-like accuracy rose from 25.0% to 95.0% (+70.0 points; 95% CI {100 * d['lo']:+.1f} to {100 * d['hi']:+.1f}, n = 20 questions)" in text
    assert "POPE adversarial F1 fell from 100.0% to 0.0% (-100.0 points;" in text
    assert "No measurable change (the interval includes 0) in " in text
    assert "clean accuracy (50.0% → 50.0%, +0.0 points; 95% CI +0.0 to +0.0, n = 10 questions)" in text
    # robust units are base questions with their attacks (4), not rows (12); attacked rows only
    assert "accuracy on attacked images (robust) (50.0% → 50.0%" in text and "n = 4 base questions with their attacks" in text
    assert text.endswith("Not measured in this run: HR-like accuracy.")
    assert "rise" not in text.split("No measurable change")[1]  # unchanged metrics are not called changes


def test_change_summary_when_nothing_moved_or_nothing_was_measured():
    res = _results(_mc("vstar", [True, False, True, True]))
    text = change_summary(res, res)
    assert "nothing changed measurably (every interval includes 0): V*-like accuracy (75.0% → 75.0%" in text
    assert "rose" not in text and "fell" not in text
    assert change_summary({"benchmarks": {"vstar": {}}}, {"benchmarks": {"vstar": {}}}).startswith("No metric was measured")
    # the paragraph opens the report
    html = render_html({"title": "t", "summary": text, "notes": "n"})
    assert html.index('<p id="summary">') < html.index('<p class="note">n</p>')

"""The HTML report: input checks, table cells (mean ± CI), charts, images, folder loading, CLI."""

import base64
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from aot.eval.metrics import mean_ci95
from aot.report import ReportDataError, build_report, gallery_entry, load_report_dir, render_html, table_from_results, validate
from aot.report.html import svg_uri
from aot.report.images import changed_boxes, data_uri, diff_map, display_scale, load_image, outline, upscale
from aot.report.svg import grouped_bars, line_chart, point_stats, stacked_bars
from aot.world import render, sample_question, sample_scene


def _scene_q():
    s = sample_scene(9_990_000_001, "complex")
    return s, render(s), sample_question(s, np.random.default_rng(0), "relation")


def test_validate_names_the_bad_path():
    validate({})
    for data, msg in [
        ({"tabel": {}}, "unknown key"),
        ({"table": {"rows": [{"runs": []}]}}, r"table.rows\[0\]"),
        ({"table": {"rows": [{"name": "a", "runs": [{"x": "high"}]}]}}, r"runs\[0\]: non-numeric value for 'x'"),
        ({"per_iteration": {"metrics": {"acc": ["a"]}}}, r"per_iteration.metrics\['acc'\]"),
        ({"per_iteration": {"op_mix": [1, 2]}}, "op_mix"),
        ({"gallery": [{"question": "q", "clean_image": "x"}]}, r"gallery\[0\]: needs"),
        ({"gallery": {"entries": [{"question": "q"}], "note": "n"}}, r"gallery\[0\]: needs"),
        ({"gallery": {"items": []}}, "gallery: expected a list of entries or"),
        ({"summary": ["a"]}, "summary: expected a string"),
    ]:
        with pytest.raises(ReportDataError, match=msg):
            validate(data)


def test_table_mean_ci_and_best():
    runs_a = [{"vstar/greedy/accuracy": v, "robust/greedy/attacked/success": 0.5} for v in (0.5, 0.6, 0.7)]
    runs_b = [{"vstar/greedy/accuracy": 0.4, "robust/greedy/attacked/success": 0.2}]
    html = render_html({"table": {"rows": [{"name": "aot", "runs": runs_a}, {"name": "base", "runs": runs_b}]}})
    m, ci = mean_ci95([0.5, 0.6, 0.7])
    assert f"{100 * m:.1f} ± {100 * ci:.1f}" in html  # 60.0 ± 24.8
    assert "60.0 ± 24.8" in html
    cells = re.findall(r"<td( class=\"best\")?>([^<]*)</td>", html)
    # best accuracy is aot's (higher), best attack success is base's (lower)
    assert ("", "50.0 ± 0.0") in cells and (' class="best"', "60.0 ± 24.8") in cells and (' class="best"', "20.0") in cells
    assert 'id="comparison"' in html and "greedy decoding" in html


def test_table_from_results_and_nan():
    r1 = {"metrics": {"a/greedy/x": 0.5, "a/greedy/y": None}, "headline": ["a/greedy/x"]}
    t = table_from_results({"base": [r1, r1], "aot": [r1]})
    assert t["columns"] == ["a/greedy/x"] and [r["name"] for r in t["rows"]] == ["base", "aot"]
    assert len(t["rows"][0]["runs"]) == 2
    html = render_html({"table": {"rows": t["rows"]}})  # all columns, one missing everywhere
    assert "–" in html and "50.0" in html


def test_svg_charts_are_well_formed():
    assert point_stats([0.5, 0.7]) == pytest.approx(mean_ci95([0.5, 0.7]))
    assert point_stats(None) is None and point_stats(float("nan")) is None and point_stats(0.3) == (0.3, 0.0)
    svg = line_chart({"aot": [0.1, [0.2, 0.3, 0.25], None, 0.5], "base": [0.1, 0.1, 0.1, 0.1]}, [0, 1, 2, 3], "acc <&>")
    root = ET.fromstring(svg)
    assert root.get("width") == "360" and root.get("height") == "220"
    assert len(root.findall("{http://www.w3.org/2000/svg}polygon")) == 0  # a band needs 2 CI points
    svg2 = line_chart({"x": [[0.1, 0.2], [0.3, 0.5], [0.4, 0.4]]}, [1, 2, 3], "band")
    assert len(ET.fromstring(svg2).findall("{http://www.w3.org/2000/svg}polygon")) == 1
    bars = ET.fromstring(stacked_bars([{"add": 3, "patch": 1}, {"move": 2}, {}], [1, 2, 3], "mix"))
    heights = [float(r.get("height")) for r in bars.findall("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(heights) == 3 and heights[0] == pytest.approx(3 * heights[1])  # add 75%, patch 25%
    ET.fromstring(line_chart({}, [], "empty"))
    # bars side by side: one per series and iteration with a value, each labelled (0% too)
    gb = ET.fromstring(grouped_bars({"before": [None, 0.5, 0.0], "after": [None, 0.25, [0.0, 0.1]]}, [0, 1, 2], "s"))
    bars = [r for r in gb.findall("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(bars) == 4 and float(bars[0].get("height")) == pytest.approx(2 * float(bars[2].get("height")))
    assert float(bars[0].get("x")) < float(bars[2].get("x")) < float(bars[1].get("x"))  # iteration 1: before, after; then 2
    assert [t.text for t in gb.iter("{http://www.w3.org/2000/svg}text")].count("0%") >= 2
    assert svg_uri("<svg/>").startswith("data:image/svg+xml;base64,")


def test_images_in_every_form(tmp_path):
    _, img, _ = _scene_q()
    uri = data_uri(img)
    path = tmp_path / "im.png"
    path.write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    for spec in (img, img.tolist(), uri, uri.split(",", 1)[1], str(path), "im.png"):
        assert np.array_equal(load_image(spec, tmp_path), img)
    with pytest.raises(ValueError, match="neither an existing file nor base64"):
        load_image("no/such/file.png", tmp_path)
    heat, peak = diff_map(img, img)
    assert peak == 0 and heat.max() <= 255 * 0.25  # unchanged: a dim grey copy of the clean image
    edited = img.copy()
    edited[5, 7] = 255 - edited[5, 7]
    edited[40, 40, 0] ^= 1  # a faint one-level change elsewhere
    heat, peak = diff_map(img, edited)
    assert peak > 1 and tuple(heat[5, 7]) == (255, 255, 255)
    # even the faintest change is bright, far above the dimmed background
    assert heat[40, 40].max() >= 150 and np.delete(heat.reshape(-1, 3), [5 * img.shape[1] + 7, 40 * img.shape[1] + 40], 0).max() <= 64
    assert changed_boxes(img, edited) == [(7, 5, 8, 6), (40, 40, 41, 41)]
    edited[41:44, 41] = 0  # joins the pixel at (40, 40) through a 1 px gap: one region
    assert changed_boxes(img, edited) == [(7, 5, 8, 6), (40, 40, 42, 44)]
    k = display_scale(img)
    assert k == 2 and upscale(img, k).shape == (2 * img.shape[0], 2 * img.shape[1], 3)
    big = outline(upscale(edited, k), [(7, 5, 8, 6)], k)
    ring = (big != upscale(edited, k)).any(axis=2)
    assert ring[8:14, 12:18].any() and not ring[10:12, 14:16].any()  # a frame around the pixel, not over it


def test_gallery_entry_forms_and_json_roundtrip(tmp_path):
    from aot.edits import apply_program, parse_program

    s, img, q = _scene_q()
    res = apply_program(s, parse_program("patch 0 0 6 6 red"), img)
    e1 = gallery_entry(q, img, res.image, {"base": "A", "final": q.answer}, program="patch 0 0 6 6 red")
    e2 = {"question": q.to_dict(), "scene": s.to_dict(), "program": "patch 0 0 6 6 red", "answers": {"base": None}}
    data = json.loads(json.dumps({"title": "g", "gallery": [e1, e2]}))
    html = render_html(data)
    imgs = re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="(\w+) (\d)"', html)
    assert len(imgs) == 6
    by = {(kind, i): u for u, kind, i in imgs}
    assert by[("edited", "0")] == by[("edited", "1")]  # the scene + program form renders the same edit
    assert "unreadable" in html and 'class="ok"' in html
    # e1's final answer is the truth, e2 has none: the fixed group and the other group; the
    # empty group is shown, saying it is empty
    assert html.index('id="gallery-fixed"') < html.index('alt="clean 0"') < html.index('id="gallery-both"')
    assert html.index('id="gallery-both"') < html.index("none in this run") < html.index('id="gallery-other"') < html.index('alt="clean 1"')
    out = build_report(data, tmp_path / "r" / "report.html")
    assert out.read_text() == html
    empty = render_html({"gallery": {"entries": [], "note": "32 questions attacked"}})
    assert empty.count("none in this run") == 2 and "32 questions attacked" in empty and 'id="gallery-other"' not in empty
    assert render_html({"gallery": []}).count("none: no attack in this run fooled the base defender") == 2


def test_load_report_dir_and_cli(tmp_path):
    from typer.testing import CliRunner
    import typer

    from aot.commands.eval import report_command

    def res(v):
        return {"model": "m", "metrics": {"vstar/greedy/accuracy": v}, "headline": ["vstar/greedy/accuracy"]}

    for arm, seeds in {"base": [0.4, 0.5], "aot": [0.7]}.items():
        for i, v in enumerate(seeds):
            p = tmp_path / "runs" / arm / f"seed{i}" / "results.json"
            p.parent.mkdir(parents=True)
            p.write_text(json.dumps(res(v)))
    data, base = load_report_dir(tmp_path / "runs")
    rows = {r["name"]: r["runs"] for r in data["table"]["rows"]}
    assert set(rows) == {"base", "aot"} and len(rows["base"]) == 2
    with pytest.raises(ReportDataError, match="no report.json"):
        load_report_dir(tmp_path / "runs" / "nothing-here")

    app = typer.Typer()
    app.command()(report_command)
    r = CliRunner().invoke(app, ["--from", str(tmp_path / "runs"), "--out", str(tmp_path / "rep.html"), "--title", "T"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "rep.html").read_text()
    assert "<title>T</title>" in html and "45.0 ±" in html and "70.0" in html
    # a report.json in the folder wins, with image paths relative to it
    _, img, q = _scene_q()
    (tmp_path / "runs" / "clean.png").write_bytes(base64.b64decode(data_uri(img).split(",", 1)[1]))
    (tmp_path / "runs" / "report.json").write_text(json.dumps({"gallery": [{"question": "q?", "options": ["a", "b"], "answer": "A", "clean_image": "clean.png", "edited_image": "clean.png", "answers": {}}]}))
    r = CliRunner().invoke(app, ["--from", str(tmp_path / "runs"), "--out", str(tmp_path / "rep2.html")])
    assert r.exit_code == 0, r.output
    assert "difference, amplified (max 0/255)" in (tmp_path / "rep2.html").read_text()


def test_attack_gallery_with_stub_defenders():
    """The base stub is right on clean images and wrong on every attacked one; the final stub is
    right everywhere except on one attacked item: the valid attacks split into edits that no
    longer fool the final defender and (one) that fools both, each group capped at per_group."""
    from aot.eval import EvalConfig, build_items
    from aot.eval.stubs import OracleDefender
    from aot.report import attack_gallery

    cfg = EvalConfig(n=4)
    items = build_items("heldout", cfg)["heldout"]
    attacked = {i for i, it in enumerate(items) if it.meta["role"] == "attacked"}
    assert attacked
    assert len(attacked) >= 3
    base = OracleDefender(items, wrong_greedy=attacked)
    final = OracleDefender(items, wrong_greedy={min(attacked)})
    g = attack_gallery(base, final, cfg, per_group=1)
    entries = g["entries"]
    assert [e["answers"]["final"] == e["answer"] for e in entries] == [True, False]
    for e in entries:
        assert e["answers"]["base"] != e["answer"]
        assert e["clean_image"] != e["edited_image"] and e["program"]
    n = len(attacked)
    assert f"{n} of those fooled the base defender" in g["note"] and f"{n - 1} no longer fool the final defender, 1 fool it too" in g["note"]
    right = OracleDefender(items)
    none = attack_gallery(right, right, cfg)  # nothing fooled the base
    assert none["entries"] == [] and "0 of those fooled" in none["note"]

"""Render the report in headless Chromium: the table, the opening summary, the side-by-side
attacker chart and both gallery groups are there, and every image decodes.

Needs Debian's `chromium` (the Makefile's test target installs it when missing); set
AOT_CHROMIUM to use another binary. Fails, rather than skips, when no browser is found.
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np

from aot.edits import apply_program, parse_program
from aot.eval import EvalConfig
from aot.eval.stubs import OracleDefender
from aot.eval import run_suite
from aot.report import attack_gallery, build_report, change_summary, gallery_entry, table_from_results
from aot.world import render, sample_question, sample_scene

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.alt; });
  var t = document.getElementById('comparison');
  var s = document.getElementById('summary');
  // each gallery group: how many cards follow its heading, or its "empty" note
  var groups = {};
  Array.prototype.forEach.call(document.querySelectorAll('#gallery h3'), function (h) {
    var next = h.nextElementSibling;
    groups[h.id] = {cards: next && next.className === 'gallery' ? next.querySelectorAll('.card').length : 0,
                    empty: next && next.className.indexOf('empty') >= 0 ? next.textContent : null,
                    shown: h.getBoundingClientRect().height > 0};
  });
  var charts = imgs.filter(function (i) { return i.alt.indexOf('chart: ') === 0 && i.getBoundingClientRect().width > 0; })
                   .map(function (i) { return i.alt; });
  var pre = document.createElement('pre');
  pre.id = 'aot-probe';
  pre.textContent = JSON.stringify({n: imgs.length, bad: bad, rows: t ? t.tBodies[0].rows.length : -1,
                                    cols: t ? t.tHead.rows[0].cells.length : -1,
                                    summary: s && s.getBoundingClientRect().height > 0 ? s.textContent : null,
                                    groups: groups, charts: charts});
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    exe = os.environ.get("AOT_CHROMIUM") or next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    assert exe, "headless Chromium not found: install Debian's package (`apt-get install -y chromium`; `make test` does it) or set AOT_CHROMIUM"
    return exe


def probe(html_path, tmp_path) -> dict:
    page = tmp_path / "probe.html"
    page.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    cmd = [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="aot-probe">([^<]*)</pre>', r.stdout)
    assert m, f"no probe output (rc {r.returncode}); stderr tail:\n{r.stderr[-2000:]}"
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def report_data():
    rng = np.random.default_rng(0)
    cols = ["vstar/greedy/accuracy", "vstar/strict3/accuracy", "pope/greedy/adversarial/f1", "robust/greedy/attacked/success"]
    runs = {arm: [{"metrics": {c: float(rng.uniform(0.3, 0.8)) for c in cols}, "headline": cols} for _ in range(3)] for arm in ("base", "clean-data RL", "AOT iter 3")}
    s = sample_scene(9_990_000_002, "complex")
    img = render(s)
    q = sample_question(s, np.random.default_rng(1), "attribute")
    res = apply_program(s, parse_program("add small red metal circle 50 10\nperturb 2 2 20 20 12 7"), img)
    gallery = [gallery_entry(q, img, res.image, {"base": "A" if q.answer != "A" else "B", "final": q.answer}, program="add small red metal circle 50 10")]
    gallery.append({"question": q.to_dict(), "scene": s.to_dict(), "program": "photo blur=1.2", "answers": {"base": None, "final": q.answer}})
    # entries found by attack_gallery itself (stub defenders: base fooled by every valid attack)
    from aot.eval import build_items

    cfg = EvalConfig(n=3)
    items = build_items("heldout", cfg)["heldout"]
    base = OracleDefender(items, wrong_greedy={i for i, it in enumerate(items) if it.meta["role"] == "attacked"})
    # the final stub still falls for the first attacked item: one entry in each group
    final = OracleDefender(items, wrong_greedy={min(i for i, it in enumerate(items) if it.meta["role"] == "attacked")})
    found = attack_gallery(base, final, cfg, per_group=1)
    gallery += found["entries"]
    # the summary from two stub defenders' evaluations on the same V* items: half right -> all right
    ecfg = EvalConfig(n=8, strict_trials=0)
    vstar = build_items("vstar", ecfg)["vstar"]
    results = {name: run_suite(d, "vstar", ecfg) for name, d in
               (("base", OracleDefender(vstar, wrong_greedy=set(range(0, len(vstar), 2)))), ("final", OracleDefender(vstar)))}
    per_it = {
        "iterations": [0, 1, 2, 3],
        "metrics": {"vstar/greedy/accuracy": [[0.5, 0.52], [0.55, 0.6], [0.6, 0.61], [0.62, 0.66]],
                    "pope/greedy/adversarial/f1": {"AOT": [0.6, 0.64, 0.7, 0.72], "random edits": [0.6, 0.61, None, 0.63]}},
        "attacker_success": {"vs the defender it trained against": [None, 0.4, 0.3, 0.25],
                             "vs the defender then trained on its edits": [None, 0.2, 0.0, [0.1, 0.15]]},
        "op_mix": [{"add": 10, "patch": 3}, {"add": 7, "perturb": 5}, {"remove": 3, "patch": 6}, {"move": 5}],
    }
    return {"title": "chromium check", "summary": change_summary(results["base"], results["final"]), "table": table_from_results(runs),
            "per_iteration": per_it, "gallery": {"entries": gallery, "note": found["note"]}}


def test_report_renders_in_chromium(tmp_path):
    data = report_data()
    out = build_report(data, tmp_path / "report.html")
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # self-contained
    entries = data["gallery"]["entries"]
    expected = 4 + 3 * len(entries)  # 4 charts; clean, edited and difference per entry
    assert len(entries) >= 4
    got = probe(out, tmp_path)
    assert got["bad"] == [] and got["n"] == expected, got
    assert got["rows"] == 3 and got["cols"] == 1 + 3, got  # greedy table: arm + 3 greedy columns
    assert got["summary"].startswith("From the base defender to the final one") and "V*-like accuracy rose from 50.0% to 100.0%" in got["summary"], got
    assert "chart: attacker success, side by side" in got["charts"] and len(got["charts"]) == 4, got
    groups = got["groups"]
    assert list(groups) == ["gallery-fixed", "gallery-both"], got  # no entry without a final answer
    assert groups["gallery-fixed"]["cards"] == len(entries) - 1 and groups["gallery-both"]["cards"] == 1, got
    assert all(g["shown"] and g["empty"] is None for g in groups.values()), got


def test_empty_gallery_groups_say_so(tmp_path):
    out = build_report({"title": "empty", "gallery": {"entries": [], "note": "0 of those fooled the base defender"}}, tmp_path / "report.html")
    got = probe(out, tmp_path)
    assert got["bad"] == [] and got["summary"] is None, got
    for gid in ("gallery-fixed", "gallery-both"):
        g = got["groups"][gid]
        assert g["shown"] and g["cards"] == 0 and g["empty"] == "none in this run", got


def test_probe_catches_a_broken_image(tmp_path):
    """The check itself works: a corrupt data URI is reported as not loaded."""
    out = tmp_path / "broken.html"
    out.write_text('<!DOCTYPE html><html><body><table id="comparison"><thead><tr><th>a</th></tr></thead><tbody></tbody></table>'
                   '<img alt="broken" src="data:image/png;base64,AAAA"></body></html>')
    got = probe(out, tmp_path)
    assert got["bad"] == ["broken"] and got["n"] == 1

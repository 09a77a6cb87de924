"""Render the report in headless Chromium: the table is there and every image decodes.

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
from aot.report import attack_gallery, build_report, gallery_entry, table_from_results
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
  var pre = document.createElement('pre');
  pre.id = 'aot-probe';
  pre.textContent = JSON.stringify({n: imgs.length, bad: bad, rows: t ? t.tBodies[0].rows.length : -1,
                                    cols: t ? t.tHead.rows[0].cells.length : -1});
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
    gallery += attack_gallery(base, OracleDefender(items), cfg, max_entries=2)
    per_it = {
        "iterations": [0, 1, 2, 3],
        "metrics": {"vstar/greedy/accuracy": [[0.5, 0.52], [0.55, 0.6], [0.6, 0.61], [0.62, 0.66]],
                    "pope/greedy/adversarial/f1": {"AOT": [0.6, 0.64, 0.7, 0.72], "random edits": [0.6, 0.61, None, 0.63]}},
        "attacker_success": [0.4, 0.3, 0.25, 0.2],
        "op_mix": [{"add": 10, "patch": 3}, {"add": 7, "perturb": 5}, {"remove": 3, "patch": 6}, {"move": 5}],
    }
    return {"title": "chromium check", "table": table_from_results(runs), "per_iteration": per_it, "gallery": gallery}


def test_report_renders_in_chromium(tmp_path):
    data = report_data()
    out = build_report(data, tmp_path / "report.html")
    html = out.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # self-contained
    expected = 4 + 3 * len(data["gallery"])  # 4 charts; clean, edited and difference per entry
    assert len(data["gallery"]) >= 3
    got = probe(out, tmp_path)
    assert got["bad"] == [] and got["n"] == expected, got
    assert got["rows"] == 3 and got["cols"] == 1 + 3, got  # greedy table: arm + 3 greedy columns


def test_probe_catches_a_broken_image(tmp_path):
    """The check itself works: a corrupt data URI is reported as not loaded."""
    out = tmp_path / "broken.html"
    out.write_text('<!DOCTYPE html><html><body><table id="comparison"><thead><tr><th>a</th></tr></thead><tbody></tbody></table>'
                   '<img alt="broken" src="data:image/png;base64,AAAA"></body></html>')
    got = probe(out, tmp_path)
    assert got["bad"] == ["broken"] and got["n"] == 1

"""The self-contained HTML report: comparison table, per-iteration plots, attack gallery.

``build_report(data, "report.html")`` takes one JSON-able mapping; every section is optional:

``title`` (str), ``summary`` (str), ``notes`` (str)
    Heading, the opening paragraph (:func:`change_summary` writes it from two evaluations) and
    a free-text paragraph.

``table``: ``{"rows": [...], "columns": [...]?, "labels": {...}?}``
    One row per model / arm: ``{"name": "AOT iter 3", "runs": [metrics_seed0, metrics_seed1, ...]}``
    where each run maps metric names to numbers (``results["metrics"]`` of ``aot.eval.run_suite``
    fits as is; null = missing). Several runs give "mean ± 95% CI" (t interval). ``columns``
    picks and orders metrics (default: every metric seen); ``labels`` renames column headers.
    Shares in [0, 1] are shown in percent. :func:`table_from_results` builds it from
    ``{arm: [results, ...]}``.

``per_iteration``: ``{"iterations": [0, 1, 2, 3]?, "metrics": {...}, "attacker_success": S?, "op_mix": [...]?}``
    ``metrics`` maps a metric name to a series S: a list with one value per iteration, each a
    number, null, or a list of per-seed numbers (plotted as mean with a 95% CI band); or a
    mapping ``{line name: S}`` for several lines in one chart (e.g. one per arm).
    ``attacker_success`` is one more series (a mapping draws several lines in one chart: self-play
    gives the attacker's success against the defender it trained against and against the defender
    then trained on its edits); ``op_mix`` is a list, one mapping
    ``{op name: count or share}`` per iteration (drawn as 100% stacked bars).

``gallery``: a list of attacks that fooled the base defender (or ``{"entries": [...], "note": str}``,
    the note shown above them), each::

    {"question": "Where is ...?" (or a Question.to_dict()), "options": [...], "answer": "B",
     "clean_image": IMAGE, "edited_image": IMAGE, "program": "add small red ...",
     "answers": {"base": "C", "final": "B"}, "caption": "..."}

    IMAGE is a PNG data URI, bare base64 PNG, a file path (relative to the data's folder) or, from
    Python, a uint8 (H, W, 3) array. Instead of the two images an entry may give ``scene``
    (``Scene.to_dict()``) and ``program``: the report renders and edits it. The difference map
    is computed by the report, and the changed regions are outlined on the edited image. Entries
    with a ``final`` answer are grouped: the edits that no longer fool the final defender (its
    answer is the true one) and those that fool both; an empty group is said to be empty.
    :func:`gallery_entry` builds an entry and :func:`attack_gallery` the whole section.

The output has no external assets: charts are SVG and pictures PNG, all as ``<img>`` data URIs.
"""

from .data import ReportDataError, load_report_dir, table_from_results, validate
from .gallery import attack_gallery, gallery_entry
from .html import build_report, render_html
from .summary import change_summary

__all__ = [
    "ReportDataError", "attack_gallery", "build_report", "change_summary", "gallery_entry", "load_report_dir", "render_html",
    "table_from_results", "validate",
]

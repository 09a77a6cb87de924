"""How faithfully the world editor paints what it is told, read by the world judge.

``measure_fidelity`` runs the editor (``DiffusersEditor.apply_box``: fill, then paste-back) on
held-out exact triples (``world_data.heldout_triples``) and asks a detector what it sees:

- add / replace: ``described`` is the share of fills whose box the judge reads (the detection
  centred in the box nearest its centre) as the described colour and shape; ``exact_attrs``
  also asks for material and size; ``judge_ceiling`` is the same share on the exact target
  renders (what a perfect editor would score with this judge);
- remove: ``removed`` is the share whose box the judge reads as it reads the exact target
  (nothing, or the object the removal uncovered);
- every op: ``outside_identical`` (pixels outside the mask bit-identical to the input),
  ``ssim_outside`` (local SSIM of the whole image with the mask's pixels taken from the input:
  1 when the outside is untouched) and ``inside_mae`` (mean absolute error against the exact
  target inside the mask, in 0..255).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..integrity import local_ssim
from ..judge.detections import Detection
from ..judge.verdict import Detector, reading_at
from .box_ops import BoxEdit
from .world_data import FILL_OPS, FillTriple, heldout_triples


def reads_as(d: Detection | None, attrs: dict[str, str], keys: Sequence[str]) -> bool:
    return d is not None and all(getattr(d, k) == attrs[k] for k in keys)


def same_reading(a: Detection | None, b: Detection | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and a.attrs() == b.attrs())


def fill_scores(t: FillTriple, edited: np.ndarray, mask: np.ndarray, seen: Sequence[Detection], truth_seen: Sequence[Detection]) -> dict[str, float]:
    """The scores of one fill (``seen``: detections in ``edited``; ``truth_seen``: in the exact target)."""
    out = {
        "outside_identical": float(np.array_equal(edited[~mask], t.image[~mask])),
        "ssim_outside": local_ssim(t.image, np.where(mask[..., None], t.image, edited)),
        "inside_mae": float(np.abs(edited[mask].astype(np.int16) - t.target[mask]).mean()),
    }
    got, ideal = reading_at(seen, t.box), reading_at(truth_seen, t.box)
    if t.obj is None:
        out["removed"] = float(same_reading(got, ideal))
    else:
        want = t.obj.attrs()
        out["described"] = float(reads_as(got, want, ("color", "shape")))
        out["exact_attrs"] = float(reads_as(got, want, ("color", "shape", "material", "size")))
        out["judge_ceiling"] = float(reads_as(ideal, want, ("color", "shape")))
    return out


def measure_fidelity(editor: Any, detect: Detector, n: int = 1000, regime: str = "complex", ops: Sequence[str] = FILL_OPS,
                     seed: int = 0, batch_size: int = 50) -> dict[str, Any]:
    """Fidelity of ``editor`` on ``n`` held-out fills of ``regime`` (ops in turn): means per op
    and over add + replace (``described``), with fills per second."""
    triples = heldout_triples(n, regime, tuple(ops), seed)
    rows: list[tuple[str, dict[str, float]]] = []
    t0, fill_s = time.perf_counter(), 0.0
    for lo in range(0, n, batch_size):
        chunk = triples[lo : lo + batch_size]
        edits = []
        for i, t in enumerate(chunk):
            t1 = time.perf_counter()
            edited, mask = editor.apply_box(t.image, BoxEdit(t.op, t.box, t.prompt if t.obj is not None else ""), seed=lo + i)
            fill_s += time.perf_counter() - t1
            edits.append((edited, mask))
        seen = detect(np.stack([e for e, _ in edits]))
        truth_seen = detect(np.stack([t.target for t in chunk]))
        rows += [(t.op, fill_scores(t, e, m, s, ts)) for t, (e, m), s, ts in zip(chunk, edits, seen, truth_seen)]
    res: dict[str, Any] = {"n": n, "regime": regime, "fills_per_s": round(n / max(fill_s, 1e-9), 2),
                           "minutes": round((time.perf_counter() - t0) / 60, 3)}
    for op in ops:
        mine = [r for o, r in rows if o == op]
        if mine:
            res[op] = {k: round(float(np.mean([r[k] for r in mine])), 4) for k in mine[0]} | {"n": len(mine)}
    painted = [r for o, r in rows if "described" in r]
    if painted:
        res["described"] = round(float(np.mean([r["described"] for r in painted])), 4)
        res["judge_ceiling"] = round(float(np.mean([r["judge_ceiling"] for r in painted])), 4)
    res["outside_identical"] = round(float(np.mean([r["outside_identical"] for _, r in rows])), 4)
    res["ssim_outside_min"] = round(float(min(r["ssim_outside"] for _, r in rows)), 6)
    return res

"""Grounding supervision for the born defender's pretraining (``aot.pretrain``, ``ground_weight``).

The world knows which objects a question is about, so two attention heads of the ``aot_vlm``
defender can be told where to look, as grounded MLLM training does with boxes:

* at the last prompt token (where the answer word is predicted), head ``ground_head`` of layer
  ``ground_answer_layer`` attends to the visual cells of the question's target objects (for a
  relation question: the subject; head ``ground_ref_head`` attends to the reference object);
* at the token before the boxed letter, head ``ground_head`` of layer ``ground_letter_layer``
  attends to the correct option's line in the prompt (its letter, the dot and the word).

The loss is ``-log`` of the attention mass on the targets (``attention_mass_loss``). Without
it the model sat at the answer priors for every setting we tried (docs/born-defender.md); with
it the heads find their targets within a few hundred steps and the answers follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

CELL = 16
"""Pixels per side of one visual token of the shipped defender (patch 8 x merge 2)."""


def cell_index(x: float, y: float, width: int, cell: int = CELL) -> int:
    """Row-major index of the visual cell holding the point (x, y) on a square canvas."""
    g = width // cell
    return min(int(y // cell), g - 1) * g + min(int(x // cell), g - 1)


@dataclass
class GroundTargets:
    """Per batch row: query positions and the key positions each supervised head should attend."""

    answer_pos: list[int] = field(default_factory=list)
    """Last prompt token (predicts the answer word)."""
    letter_pos: list[int] = field(default_factory=list)
    """The '{' before the boxed letter."""
    cells: list[list[int]] = field(default_factory=list)
    """Token positions of the target objects' cells (relation: the subject); [] for none."""
    ref_cells: list[list[int]] = field(default_factory=list)
    """Relation questions: the reference object's cell; [] otherwise."""
    option: list[list[int]] = field(default_factory=list)
    """Token positions of the correct option's 'X', '.', word in the prompt; [] if not found."""


def grounding_targets(input_ids: torch.Tensor, questions, scenes, n_completion: list[int], tok, image_token_id: int, cell: int = CELL) -> GroundTargets:
    """Targets for a left-padded batch whose row i ends with a completion of ``n_completion[i]``
    tokens of the form ``' word \\boxed{X}<|im_end|>'`` (``answer_completion``); ``cell``: the
    model's visual cell side in pixels."""
    nl, dot = tok.convert_tokens_to_ids("Ċ"), tok.convert_tokens_to_ids(".")
    L = input_ids.shape[1]
    out = GroundTargets()
    for i, (q, scene, n) in enumerate(zip(questions, scenes, n_completion)):
        row = input_ids[i].tolist()
        out.answer_pos.append(L - n - 1)
        out.letter_pos.append(L - 4)  # ... '{' LETTER '}' <|im_end|>
        img = [j for j, t in enumerate(row) if t == image_token_id]
        objs = [scene.get(t.id) for t in q.targets]
        cells = [cell_index(o.x, o.y, scene.width, cell) for o in objs if o is not None]
        if any(c >= len(img) for c in cells):
            raise ValueError(f"grounding_targets: row {i} has {len(img)} image tokens, fewer than its cell index {max(cells)}")
        if q.kind == "relation" and len(cells) == 2:
            out.cells.append([img[cells[0]]])
            out.ref_cells.append([img[cells[1]]])
        else:
            out.cells.append([img[c] for c in sorted(set(cells))])
            out.ref_cells.append([])
        let = tok.convert_tokens_to_ids(q.answer)
        pos = [j for j in range(1, L - n - 1) if row[j] == let and row[j - 1] == nl and row[j + 1] == dot]
        out.option.append([pos[-1], pos[-1] + 1, pos[-1] + 2] if pos else [])
    return out


def attention_mass_loss(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor, head: int, qpos: list[int], targets: list[list[int]]) -> tuple[torch.Tensor, float]:
    """Mean over rows with targets of ``-log sum_{j in targets} softmax(q_i . k_j)``, for one head.

    q (B, H, L, E) with the scale folded in, k (B, H, K, E), mask (B, 1, L, K) bool (the
    tensors ``aot_vlm`` attention keeps when ``capture`` is on). Also returns the share of rows
    whose most-attended key is a target."""
    rows = [i for i, t in enumerate(targets) if t]
    if not rows:
        return q.new_zeros(()), 0.0
    idx = torch.tensor(rows, device=q.device)
    qp = torch.tensor([qpos[i] for i in rows], device=q.device)
    qs = q[idx, head, qp]  # (R, E)
    logits = torch.einsum("re,rke->rk", qs, k[idx, head]).masked_fill(~mask[idx, 0, qp], float("-inf"))
    logp = logits.log_softmax(-1)
    sel = torch.zeros_like(logp, dtype=torch.bool)
    for r, i in enumerate(rows):
        sel[r, targets[i]] = True
    loss = -torch.logsumexp(logp.masked_fill(~sel, float("-inf")), -1).mean()
    acc = float(sel.gather(1, logp.argmax(-1, keepdim=True)).float().mean())
    return loss, acc

"""The world judge: eyes for pixel edits, trained on exact renders.

- ``detections``: ``Detection``, the renderer's truth as detections, ``match`` / ``Counts``
  (precision and recall against that truth);
- ``model``: ``WorldJudge``, a small dense labeller (centre, offset, colour, shape, material,
  size per 4x4 cell), its targets, loss, decoding and safetensors save/load;
- ``train``: ``pretrain_judge`` (``aot pretrain-judge``) and ``evaluate_judge``;
- ``verdict``: ``judge_verdict``, the integrity verdict of a diffusion edit (duplicates of the
  question's references, targets intact).
"""

from .detections import Counts, Detection, Truth, match, truth_detections
from .model import JudgeArch, WorldJudge, load_judge, save_judge
from .verdict import JudgeVerdictConfig, judge_verdict

__all__ = [
    "Counts", "Detection", "JudgeArch", "JudgeVerdictConfig", "Truth", "WorldJudge", "judge_verdict", "load_judge",
    "match", "save_judge", "truth_detections",
]

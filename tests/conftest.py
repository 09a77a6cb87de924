import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest


@pytest.fixture
def qa_items():
    """``qa_items(n)``: n simple-scene (image, question) items for RL tests (scene seeds 0..n-1)."""
    import numpy as np

    from aot.rl.defender import QAItem
    from aot.world import render, sample_question, sample_scene

    def make(n: int = 8) -> list:
        rng = np.random.default_rng(0)
        out = []
        for s in range(n):
            sc = sample_scene(s, "simple")
            out.append(QAItem(render(sc), sample_question(sc, rng)))
        return out

    return make

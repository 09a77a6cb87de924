"""The procedural scene world: scene graph, regimes, renderer and questions (numpy only)."""

from .questions import (
    LETTERS,
    QUESTION_KINDS,
    Evaluation,
    Question,
    Target,
    evaluate,
    sample_question,
    scene_questions,
)
from .render import render, visible_fraction
from .sampler import REGIMES, RegimeConfig, get_regime, sample_scene
from .types import (
    ATTRIBUTE_VALUES,
    BACKGROUND_KINDS,
    COLORS,
    MATERIALS,
    SHAPES,
    SIZES,
    Background,
    Lighting,
    Obj,
    Scene,
)

__all__ = [
    "ATTRIBUTE_VALUES", "BACKGROUND_KINDS", "COLORS", "LETTERS", "MATERIALS", "QUESTION_KINDS", "REGIMES",
    "SHAPES", "SIZES", "Background", "Evaluation", "Lighting", "Obj", "Question", "RegimeConfig", "Scene",
    "Target", "evaluate", "get_regime", "render", "sample_question", "sample_scene", "scene_questions",
    "visible_fraction",
]

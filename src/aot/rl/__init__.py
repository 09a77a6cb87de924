"""GRPO/DAPO on TRL, with the paper's dynamic-sampling filter."""
from .dynamic_sampling import keep_completions, keep_groups
from .grpo import DynamicSamplingGRPOTrainer, RLConfig, grpo_args, make_trainer

__all__ = ["DynamicSamplingGRPOTrainer", "RLConfig", "grpo_args", "keep_completions", "keep_groups", "make_trainer"]

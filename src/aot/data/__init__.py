"""AOT-SFT: the adversarial dataset pipeline, its sharded parquet store, and exports.

``build_sft(SFTBuildConfig(...), out)`` builds a dataset directory; ``export(out, fmt, dest)``
writes it for EasyR1/verl, LLaVA or TRL; ``contact_pairs`` draws clean/edited pairs.
"""

from .build import BuildError, build_sft, describe_manifest, verify
from .sft import CATEGORIES, SFTBuildConfig, build_shard

__all__ = ["BuildError", "CATEGORIES", "SFTBuildConfig", "build_sft", "build_shard", "describe_manifest", "verify"]

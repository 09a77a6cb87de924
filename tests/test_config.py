from dataclasses import dataclass, field

import pytest

from aot.config import ConfigError, config_hash, dump_config, from_dict, load_config
from aot.rl import RLConfig


@dataclass
class Inner:
    lr: float = 1e-3
    """learning rate"""
    tags: list[str] = field(default_factory=list)


@dataclass
class Outer:
    seed: int = 0
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    rl: RLConfig = field(default_factory=RLConfig)


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("seed: 3\ninner:\n  lr: 0.5\n")
    c = load_config(Outer, p, ["inner.tags=[a, b]", "rl.max_steps=7", "name=run1"])
    assert c.seed == 3 and c.inner.lr == 0.5 and c.inner.tags == ["a", "b"] and c.rl.max_steps == 7 and c.name == "run1"
    assert c.rl.loss_type == "dapo"  # defaults kept
    again = load_config(Outer, None, [])
    assert config_hash(again) != config_hash(c)
    # the dump reloads to the same config
    q = tmp_path / "d.yaml"
    q.write_text(dump_config(c))
    assert load_config(Outer, q) == c


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("inner.lrr=1", "inner.lrr"),
        ("seed=abc", "seed: expected an integer"),
        ("inner.lr=[1]", "inner.lr: expected a number"),
        ("inner.lr=fast", "inner.lr: expected a number"),
        ("rl.num_generations=1", "num_generations"),  # __post_init__ validation surfaces
        ("noequals", "expected key.path=value"),
    ],
)
def test_errors_name_the_path(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        load_config(Outer, None, [override])


def test_float_in_e_notation(tmp_path):
    # PyYAML reads "1e-3" (no dot) as a string; a float field still takes it
    assert load_config(Outer, None, ["inner.lr=1e-3"]).inner.lr == 0.001
    p = tmp_path / "c.yaml"
    p.write_text("inner:\n  lr: 2e-4\n")
    assert load_config(Outer, p).inner.lr == 0.0002


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Outer, bad)
    with pytest.raises(ConfigError):
        from_dict(Outer, {"inner": 3})

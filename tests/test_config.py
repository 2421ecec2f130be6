"""Typed configs: YAML + overrides, unknown keys named, types checked, saved per run."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from genreid.core.config import ConfigError, chosen_by, load_config, save_config, to_dict
from genreid.core.runs import RunDir


@dataclass
class Data:
    dataset: str = "market1501"
    root: str | None = None
    size: tuple[int, int] = (128, 64)


@dataclass
class Train:
    epochs: int = 10
    lr: float = 0.01
    amp: bool = False
    schedule: Literal["step", "cosine"] = "step"
    milestones: list[int] = field(default_factory=lambda: [40])


@dataclass
class Cfg:
    data: Data = field(default_factory=Data)
    train: Train = field(default_factory=Train)
    seed: int = 0


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {dataset: viper}\ntrain: {epochs: 3, lr: 0.1}\nseed: 5\n")
    cfg = load_config(Cfg, path, ["train.epochs=7", "data.size=[64, 32]", "train.lr=1e-3"])
    assert cfg.data.dataset == "viper" and cfg.seed == 5
    assert cfg.train.epochs == 7 and cfg.train.lr == pytest.approx(1e-3)
    assert cfg.data.size == (64, 32)
    assert cfg.train.milestones == [40]


def test_base_file_is_merged(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {epochs: 3, lr: 0.5}\n")
    (tmp_path / "c.yaml").write_text("_base_: base.yaml\ntrain: {epochs: 9}\n")
    cfg = load_config(Cfg, tmp_path / "c.yaml")
    assert (cfg.train.epochs, cfg.train.lr) == (9, 0.5)


def test_a_base_may_have_its_own_base_and_a_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("train: {epochs: 3, lr: 0.5}\ndata: {root: r}\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\ntrain: {epochs: 9}\n")
    (tmp_path / "c.yaml").write_text("_base_: b.yaml\ntrain: {lr: 0.25}\n")
    cfg = load_config(Cfg, tmp_path / "c.yaml")
    assert (cfg.train.epochs, cfg.train.lr, cfg.data.root) == (9, 0.25, "r")
    (tmp_path / "a.yaml").write_text("_base_: c.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle \(c.yaml -> b.yaml -> a.yaml -> c.yaml\)"):
        load_config(Cfg, tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", r"unknown config key 'train.epoch'.*Did you mean 'train.epochs'"),
        ("trian.epochs=3", r"unknown config key 'trian'"),
        ("train.epochs=three", r"train.epochs: expected an integer"),
        ("train.amp=3", r"train.amp: expected true or false"),
        ("train.schedule=linear", r"train.schedule: 'linear' is not allowed.*step, cosine"),
        ("train", r"not key=value"),
    ],
)
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Cfg, None, [override])


def test_unknown_key_in_file_names_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {arch: ide}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'model'.*c.yaml"):
        load_config(Cfg, path)


def test_run_dir_records_config_versions_seed(tmp_path):
    cfg = load_config(Cfg, None, ["seed=11"])
    run = RunDir(tmp_path / "run")
    run.record_config(cfg, seed=cfg.seed, stage="test")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved == to_dict(cfg)
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["seed"] == 11 and "torch" in env["versions"] and env["stage"] == "test"
    # the saved config loads back to the same object
    save_config(cfg, tmp_path / "again.yaml")
    assert load_config(Cfg, tmp_path / "again.yaml") == cfg


def test_metrics_jsonl_and_truncate_on_resume(tmp_path):
    run = RunDir(tmp_path / "run")
    for step in range(5):
        run.log_metrics({"step": step, "loss": 1.0 / (step + 1)})
    with open(run.metrics_path, "a") as fh:
        fh.write('{"step": 5, "lo')  # the line a crash cut short
    run.truncate_metrics(keep_until=2)
    assert [m["step"] for m in run.read_metrics()] == [0, 1, 2]


def test_yaml_booleans_reach_on_off_choices():
    """YAML 1.1 reads `off` as false: `train.amp=off` (the advice NaN errors give) must work."""
    from genreid.engine.tasks.reid import ReIDTrainConfig

    cfg = load_config(ReIDTrainConfig, "tiny", ["train.amp=off", "data.cache=on"])
    assert cfg.train.amp == "off" and cfg.data.cache == "on"
    assert load_config(ReIDTrainConfig, "tiny", ["data.cache=off"]).data.cache == "off"
    with pytest.raises(ConfigError, match="train.amp: True is not allowed"):
        load_config(ReIDTrainConfig, "tiny", ["train.amp=yes"])


# --- a plugin's options, chosen by another key (core/config.py: chosen_by) ---------------


@dataclass
class Loud:
    volume: int = 5


@dataclass
class Quiet:
    volume: int = 1
    mute: bool = False


PLUGINS = {"loud": Loud, "quiet": Quiet}


def _plugin(name: str) -> type:
    if name not in PLUGINS:
        raise ConfigError(f"unknown plugin {name!r}")
    return PLUGINS[name]


@dataclass
class Speaker:
    kind: str = "loud"
    options: Loud | Quiet | None = chosen_by("kind", _plugin, lambda: list(PLUGINS))


@dataclass
class Limits:
    lr: float = 1.0
    depth: int = 3

    def check(self, key: str = "limits") -> None:
        if self.lr <= 0:
            raise ConfigError(f"{key}.lr: expected > 0")


@dataclass
class Rig:
    speaker: Speaker = field(default_factory=Speaker)
    # chosen by a key of another section (a dotted key from the root)
    extra: Loud | Quiet | None = chosen_by("speaker.kind", _plugin, lambda: list(PLUGINS))
    a: Limits = field(default_factory=lambda: Limits(lr=0.5))  # other defaults than its class
    b: Limits = field(default_factory=Limits)


def test_a_chosen_section_reads_the_options_of_the_named_plugin():
    rig = load_config(Rig, None, ["speaker.kind=quiet", "speaker.options.mute=true"])
    assert rig.speaker.options == Quiet(mute=True)
    assert load_config(Rig, None, ["speaker.options.volume=9"]).speaker.options == Loud(9)
    assert load_config(Rig, None, ["extra.volume=2"]).extra == Loud(2)  # speaker.kind's default
    assert load_config(Rig, None, ["speaker.kind=quiet", "extra.mute=true"]).extra.mute
    with pytest.raises(ConfigError, match=r"'speaker.options.mute'\. It is an option of quiet, "
                       r"not of loud \(speaker.kind\)"):  # fmt: skip
        load_config(Rig, None, ["speaker.options.mute=true"])
    with pytest.raises(ConfigError, match=r"'extra.mute'\. It is an option of quiet, not of loud "
                       r"\(speaker.kind\)"):  # fmt: skip
        load_config(Rig, None, ["extra.mute=true"])
    with pytest.raises(ConfigError, match=r"speaker.options.mute is an option of quiet \(speaker"):
        load_config(Rig, None, ["speaker.mute=true"])
    with pytest.raises(ConfigError, match=r"Did you mean 'speaker.options.volume'"):
        load_config(Rig, None, ["speaker.options.volum=1"])
    with pytest.raises(ConfigError, match=r"speaker.kind: unknown plugin 'odd'"):
        load_config(Rig, None, ["speaker.kind=odd", "speaker.options.volume=1"])


def test_a_section_starts_from_its_fields_defaults_and_checks_at_its_key():
    rig = load_config(Rig, None, ["a.depth=4", "b.depth=4"])
    assert (rig.a.lr, rig.b.lr) == (0.5, 1.0)  # a's own default survives a partial section
    with pytest.raises(ConfigError, match=r"^b.lr: expected > 0"):
        load_config(Rig, None, ["b.lr=0"])

"""Config version 2: label strategies and GAN architectures own their options (``labels.options``,
``train.options``), one optimiser config with one ``lr`` serves every optimiser (a GAN's lr left
``train`` for ``optim.gen``/``optim.dis``), and version-1 configs migrate when read.

``tests/golden/config_values.json`` holds the effective values of every shipped config and of
every training run ``genreid reproduce`` plans, captured with the version-1 code (flattened to
dotted keys, as ``flat`` below does). Each must resolve to the same values today, under its
new key, and the version-1 config itself (what a run folder of that code holds) must migrate
to the very config that version 2 loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from genreid.core.config import (
    CONFIG_VERSION,
    ConfigError,
    check_config,
    find_config,
    from_dict,
    load_config,
    migrate_override,
    migrate_overrides,
    save_config,
    to_dict,
)
from genreid.engine.pretrain import PretrainConfig
from genreid.engine.reproduce.pipeline import MAY_CHANGE, ReproduceConfig
from genreid.engine.reproduce.plan import Context, plan_table, replicates
from genreid.engine.reproduce.spec import load_table, table_names
from genreid.engine.resume import config_differences
from genreid.engine.runspec import RunSpec
from genreid.engine.slsr import SeedPlanner, SlsrConfig, record_slsr
from genreid.engine.stages import check_pipeline
from genreid.engine.tasks import TASKS, load_any_config, load_task_config
from genreid.engine.tasks.dgnet import DGNetConfig
from genreid.engine.tasks.gan import GanConfig
from genreid.engine.tasks.reid import ReIDTrainConfig
from genreid.labels.config import LabelsConfig, StrategyOptions
from genreid.labels.lsr import LSR
from genreid.labels.registry import STRATEGIES
from genreid.models.gan import GAN_ARCHS, GanOptions

BEFORE = json.loads((Path(__file__).parent / "golden" / "config_values.json").read_text())
PLAN_ROOT = Path("/plan")  # the job folders of the capture (values hold these paths)
ANY = object()  # a new key that the optimiser it sits in never reads
# version 1's flat keys of one strategy or one GAN architecture
LABEL_OPTIONS = {"epsilon", "temperature", "smprl_from", "smprl_targets", "clusters", "cluster_ids"}
GAN_OPTIONS = {"d_steps", "g_steps", "critic_steps", "gp_weight", "collapse_loss", "max_critic_gap"}
UNREAD = {"head_lr_mult", "momentum", "nesterov", "inv_gamma", "inv_power", "min_lr_factor"}
# keys new in version 2 and the values that give version 1's behaviour
# Keys added after the capture, for every task, at the default that keeps the captured behaviour
# (train.fused: auto, which is off wherever the captured runs trained).
ADDED_KEYS: dict[str, Any] = {"train.fused": "auto"}
NEW_KEYS: dict[str, dict[str, Any]] = {
    "reid": {"optim.betas": [0.9, 0.999]},  # torch's Adam default, as version 1 used
    "gan": {
        f"optim.{o}.{k}": v
        for o in ("gen", "dis")
        for k, v in {
            "name": "adam",
            "weight_decay": 0.0,
            "schedule": "constant",
            **dict.fromkeys((*UNREAD, "milestones", "gamma"), ANY),
        }.items()
    },  # fmt: skip
    "dgnet": {
        **{
            f"optim.{o}.{k}": v
            for o in ("gen", "dis")
            for k, v in {"name": "adam", "schedule": "step", **dict.fromkeys(UNREAD, ANY)}.items()
        },
        "optim.ea.betas": [0.9, 0.999],
        "optim.ea.nesterov": False,
        **dict.fromkeys(
            ("optim.ea.inv_gamma", "optim.ea.inv_power", "optim.ea.min_lr_factor"), ANY
        ),
    },
}


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections to dotted keys (an empty mapping stays one value)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def unflatten(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def version_1_view(new: dict[str, Any]) -> dict[str, Any]:
    """A version-2 config's values under their version-1 keys (new keys checked and left out)."""
    task, old = new["task"], {}
    for key, value in new.items():
        section, _, rest = key.partition(".")
        if key == "version":
            assert value == CONFIG_VERSION
        elif key == "labels.options":
            assert value == {}  # a strategy without options
        elif key.startswith("labels.options."):
            old["labels." + rest.split(".", 1)[1]] = value
        elif task == "gan" and key.startswith("train.options."):
            old["train." + rest.split(".", 1)[1]] = value
        elif task == "gan" and section == "optim" and key.rsplit(".", 1)[1] in ("lr", "betas"):
            old_key = "train." + key.rsplit(".", 1)[1]
            assert old.setdefault(old_key, value) == value, f"{key}: G and D differed in v1"
        elif key in ADDED_KEYS:
            assert value == ADDED_KEYS[key], (key, value)
        elif key in NEW_KEYS.get(task, {}):
            want = NEW_KEYS[task][key]
            assert want is ANY or want == value, (key, value, want)
        else:
            old[key] = value
    return old


def assert_same_values(where: str, before: dict[str, Any], cfg: Any) -> None:
    """``cfg`` has every value of ``before`` (version 1's) under its new key; only keys of
    another strategy or architecture than the chosen one, which never did anything, are gone."""
    now = version_1_view(flat(to_dict(cfg)))
    for key, value in before.items():
        if key in now:
            assert now[key] == value, (where, key, now[key], value)
        else:
            section, _, name = key.partition(".")
            other_plugin = (section == "labels" and name in LABEL_OPTIONS) or (
                before["task"] == "gan" and section == "train" and name in GAN_OPTIONS
            )
            assert other_plugin, (where, "lost", key, value)
    assert not set(now) - set(before), (where, set(now) - set(before))


def assert_migrates(where: str, before: dict[str, Any], cfg: Any) -> None:
    """The version-1 config (what a run folder of that code holds) reads as ``cfg``."""
    if "version" not in {f.name for f in fields(cfg)}:
        return  # a pipeline config: no version, nothing moved
    migrated = from_dict(type(cfg), unflatten(before))
    check_config(migrated)
    assert to_dict(migrated) == to_dict(cfg), where


def job_values(side: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    values = dict(side["configs"][job["config"]])
    for key, value in job["changed"].items():
        if value == "<absent>":
            values.pop(key, None)
        else:
            values[key] = value
    return values


@pytest.mark.parametrize("name", sorted(BEFORE["configs"]))
def test_every_shipped_config_keeps_its_values_and_its_old_form_migrates(name):
    _, cfg = load_any_config(name)
    before = BEFORE["configs"][name]
    assert_same_values(name, before, cfg)
    assert_migrates(name, before, cfg)


@pytest.mark.parametrize("table", table_names())
def test_every_reproduce_run_keeps_its_values_and_its_old_form_migrates(table):
    """Each training run of every table (both scales) as the capture planned it; its override
    strings use the version-2 keys."""
    spec = load_table(table)
    choices = {n: c.value for n, c in spec.choices.items()}
    seen = 0
    for scale in ("tiny", "paper"):
        ctx = Context(scale, "viper", "/data/x", PLAN_ROOT / table / scale,
                      replicates("viper", 1, 1), lambda options: 632,
                      unlabeled=("cuhk03", "/data/u"))  # fmt: skip
        for job in plan_table(spec, ctx, choices).jobs.values():
            if job.kind != "train":
                continue
            where = f"{table}/{scale}/{job.id}"
            _, cfg = load_task_config(job.params["config"], job.params["overrides"])
            before = job_values(BEFORE, BEFORE["jobs"][where])
            assert_same_values(where, before, cfg)
            assert_migrates(where, before, cfg)
            seen += 1
    assert seen == sum(1 for j in BEFORE["jobs"] if j.startswith(f"{table}/"))


def test_every_strategy_and_architecture_declares_its_options():
    for name, cls in STRATEGIES.items():
        assert is_dataclass(cls.Options) and issubclass(cls.Options, StrategyOptions), name
    for name, cls in GAN_ARCHS.items():
        assert is_dataclass(cls.Options) and issubclass(cls.Options, GanOptions), name
        assert cls.Options().d_updates >= 1 and "g_steps" in {f.name for f in fields(cls.Options)}
    for name in TASKS:  # every task config carries the key layout's version
        assert "version" in {f.name for f in fields(TASKS.get(name).config_class)}, name


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ("tiny", ["labels.epsilon=0.2"],
         r"unknown config key 'labels.epsilon'\. labels.options.epsilon is an option of lsr "
         r"\(labels.strategy\)"),
        ("tiny", ["labels.strategy=fapl_onehot", "labels.options.temperature=0.5"],
         r"'labels.options.temperature'\. It is an option of fapl_dist, not of fapl_onehot "
         r"\(labels.strategy\)"),
        ("tiny", ["labels.strategy=fapl_dist", "labels.options.temprature=0.5"],
         r"Did you mean 'labels.options.temperature'\?"),
        ("tiny", ["labels.strategy=lsr", "labels.options.epsilon=1.5"],
         r"labels.options.epsilon: expected a value in \[0, 1\)"),
        ("tiny", ["labels.strategy=fapl_dist", "labels.options=3"],
         r"labels.options: expected a mapping of fapl_dist's options"),
        ("tiny", ["labels.strategy=lsq"], r"labels.strategy: unknown label strategy 'lsq'"),
        ("tiny", ["optim.betas=[0.9]"], r"optim.betas: expected two values"),
        ("gan/dcgan_tiny", ["train.lr=1e-3"],
         r"'train.lr'\. It moved to optim.gen.lr and optim.dis.lr \(config version 2\)"),
        ("gan/dcgan_tiny", ["train.gp_weight=5"],
         r"train.options.gp_weight is an option of wgangp \(model.arch\)"),
        ("gan/dcgan_tiny", ["model.arch=wgangp"],
         r"'train.options.d_steps'\. It is an option of dcgan, not of wgangp \(model.arch\); "
         r"set train.options=\{\} to start from wgangp's defaults"),
        ("gan/dcgan_tiny", ["optim.dis.lr=0"], r"optim.dis.lr and optim.dis.head_lr_mult"),
        ("gan/dcgan_tiny", ["optim.gen.schedule=step"], r"optim.gen.schedule: a GAN trains"),
        ("gan/wgangp_tiny", ["train.options.critic_steps=0"], r"options.critic_steps: expected"),
        ("dgnet/dgnet_tiny", ["optim.gen.schedule=inverse"], r"optim.gen.schedule: DG-Net's"),
        ("tiny", ["version=3"], r"version: this config is version 3, newer than"),
    ],
)  # fmt: skip
def test_options_and_optimisers_are_checked_with_helpful_errors(config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_task_config(config, overrides)


def test_switching_the_plugin_starts_from_its_options():
    """A config's options belong to its plugin: switching needs the options cleared (or the
    new plugin's given), which then take the new plugin's defaults."""
    _, w = load_task_config("gan/dcgan_tiny", ["model.arch=wgangp", "train.options={}"])
    assert (w.train.options.critic_steps, w.train.options.g_steps) == (5, 1)
    _, r = load_task_config("tiny", ["labels.strategy=fapl_dist"])
    assert r.labels.options.temperature == 1.0
    _, r = load_task_config("tiny", ["labels.strategy=slsr", "labels.options.clusters=c.csv"])
    assert (r.labels.options.clusters, r.labels.options.cluster_ids) == ("c.csv", "majority")


def test_a_partial_optimiser_section_keeps_its_owners_defaults():
    """``optim.gen: {lr: ...}`` changes the lr alone: name, betas (the arch's), weight decay and
    schedule stay those of the GAN's optimiser, not the class's (SGD, 5e-4, step)."""
    _, g = load_task_config("gan/wgangp_tiny", ["optim.gen={lr: 3.0e-4}"])
    gen, dis = g.optim.gen, g.optim.dis
    assert (gen.name, gen.lr, gen.betas, gen.weight_decay, gen.schedule) == (
        "adam", 3e-4, [0.0, 0.9], 0.0, "constant"
    )  # fmt: skip
    assert dis.lr == 1e-4
    _, d = load_task_config("dgnet/dgnet_tiny", ["optim.dis={lr: 2.0e-3}"])
    assert (d.optim.dis.name, d.optim.dis.betas, d.optim.dis.milestones) == (
        "adam", [0.0, 0.999], [60000]
    )  # fmt: skip


def test_a_version_1_file_migrates_and_a_version_2_override_wins(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(
        "task: reid\nlabels: {strategy: fapl_dist, temperature: 0.5, epsilon: 0.1, "
        "smprl_from: null, clusters: null, cluster_ids: majority}\n"
    )
    cfg = load_config(ReIDTrainConfig, old)
    assert cfg.version == CONFIG_VERSION and cfg.labels.options.temperature == 0.5
    cfg = load_config(ReIDTrainConfig, old, ["labels.options.temperature=0.3"])
    assert cfg.labels.options.temperature == 0.3
    old.write_text(
        "task: gan\nmodel: {arch: wgangp}\n"
        "train: {lr: 3.0e-4, betas: [0.5, 0.9], d_steps: 1, critic_steps: 2, g_steps: 1, "
        "gp_weight: 5.0, collapse_loss: 1.0e-3, max_critic_gap: 1000.0}\n"
    )
    gan = load_config(GanConfig, old, ["optim.dis.lr=1.0e-4"])
    assert (gan.optim.gen.lr, gan.optim.dis.lr, gan.optim.dis.betas) == (3e-4, 1e-4, [0.5, 0.9])
    assert (gan.train.options.critic_steps, gan.train.options.gp_weight) == (2, 5.0)
    save_config(gan, tmp_path / "new.yaml")  # what a run folder holds from now on
    saved = yaml.safe_load((tmp_path / "new.yaml").read_text())
    assert saved["version"] == CONFIG_VERSION and "lr" not in saved["train"]
    assert load_config(GanConfig, tmp_path / "new.yaml") == gan


def test_version_1_run_folders_resume(tmp_path):
    """A GAN and a re-ID run whose config.yaml is in version 1's layout (flat options, the GAN's
    lr in train, every strategy's and arch's keys) resume from their checkpoints."""
    from genreid.engine.tasks.gan import train_gan
    from genreid.engine.tasks.reid import train
    from tests.fixtures import make_market_tree

    root = make_market_tree(tmp_path / "market", size=(16, 32))
    gan_keys = [
        f"data.root={root}", "model.arch=wgangp", "data.height=32", "data.width=16",
        "model.width=4", "model.depth=2", "train.batch_size=4", "train.progress=false",
        "train.device=cpu", "train.options.critic_steps=2", "train.grid_size=4",
        "measure.enabled=false",
    ]  # fmt: skip
    run = tmp_path / "gan"
    train_gan(load_config(GanConfig, None, [*gan_keys, "train.epochs=1"]), run)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    opts, optim = saved["train"].pop("options"), saved.pop("optim")
    saved.pop("version")
    saved["train"].update(opts, lr=optim["gen"]["lr"], betas=optim["gen"]["betas"], d_steps=1,
                          collapse_loss=1e-3)  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    res = train_gan(load_config(GanConfig, None, [*gan_keys, "train.epochs=2"]), run, resume=True)
    assert res["status"] == "done" and res["epochs_completed"] == 2

    reid_keys = [
        f"data.root={root}", "data.height=32", "data.width=16", "model.width=8",
        "train.batch_size=8", "train.progress=false", "train.device=cpu",
        "model.pretrained=null", "labels.strategy=lsr", "labels.options.epsilon=0.2",
    ]  # fmt: skip
    run = tmp_path / "reid"
    train(load_config(ReIDTrainConfig, "tiny", [*reid_keys, "train.epochs=1"]), run)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    saved.pop("version")
    saved["optim"].pop("betas")
    saved["labels"].update(saved["labels"].pop("options"), temperature=1.0, smprl_from=None,
                           smprl_targets=None, clusters=None, cluster_ids="majority")  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    cfg = load_config(ReIDTrainConfig, "tiny", [*reid_keys, "train.epochs=2"])
    res = train(cfg, run, resume=True)
    assert res["status"] == "done" and res["epochs_completed"] == 2


# ---------------------------------------------------------------- review of the version-2 layout
@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ("tiny", ["labels.epsilom=0.2"], r"Did you mean 'labels.options.epsilon'"),
        ("gan/dcgan_tiny", ["train.d_step=2"], r"Did you mean 'train.options.d_steps'"),
        ("gan/dcgan_tiny", ["optim.gen.head_lr_mult=2"],
         r"optim.gen.head_lr_mult: has no effect for a GAN \(optim.gen.name=adam\)"),
        ("gan/dcgan_tiny", ["optim.dis.momentum=0.5"], r"optim.dis.momentum: has no effect"),
        ("gan/dcgan_tiny", ["optim.gen.min_lr_factor=0.1"], r"optim.gen.min_lr_factor: has no"),
        ("gan/dcgan_tiny", ["optim.gen.milestones=[5]"], r"optim.gen.milestones: has no effect"),
        ("dgnet/dgnet_tiny", ["optim.ea.min_lr_factor=0.1"],
         r"optim.ea.min_lr_factor: has no effect for DG-Net"),
        ("dgnet/dgnet_tiny", ["optim.gen.head_lr_mult=2"], r"optim.gen.head_lr_mult: has no"),
        ("dgnet/dgnet_tiny", ["optim.dis.inv_power=0.5"], r"optim.dis.inv_power: has no effect"),
        ("tiny", ["optim.lr=null"], r"optim.lr: expected a value, got null"),
    ],
)  # fmt: skip
def test_the_closest_key_and_keys_an_optimiser_never_reads(config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_task_config(config, overrides)


@pytest.mark.parametrize(
    ("config", "overrides", "hint"),
    [
        ("gan/dcgan_tiny", ["train.lr=1e-3"], "It moved to optim.gen.lr and optim.dis.lr"),
        ("tiny", ["labels.epsilon=0.2"], "labels.options.epsilon is an option of lsr"),
        ("tiny", ["labels.strategy=fapl_onehot", "labels.options.temperature=0.5"],
         "It is an option of fapl_dist, not of fapl_onehot"),
    ],
)  # fmt: skip
def test_a_moved_or_misplaced_key_gets_its_place_and_no_guess(config, overrides, hint):
    with pytest.raises(ConfigError) as err:
        load_task_config(config, overrides)
    assert hint in str(err.value) and "Did you mean" not in str(err.value)


def test_messages_name_each_key_once():
    with pytest.raises(ConfigError) as err:
        load_task_config("tiny", ["optim.lr=null"])
    assert "betas" not in str(err.value).split("(in ")[0]
    with pytest.raises(ConfigError) as err:
        load_task_config("gan/dcgan_tiny", ["model.arch=foo"])
    assert str(err.value).count("model.arch") == 1, err.value
    assert "unknown GAN architecture 'foo'" in str(err.value)


def test_optimisers_take_the_keys_they_read():
    """sgd's momentum in a GAN, E_a's head and a shipped DG-Net config load."""
    _, g = load_task_config("gan/dcgan_tiny", ["optim.dis.name=sgd", "optim.dis.momentum=0.5"])
    assert (g.optim.dis.name, g.optim.dis.momentum) == ("sgd", 0.5)
    _, d = load_task_config("dgnet/dgnet_tiny", ["optim.ea.head_lr_mult=2"])
    assert d.optim.ea.head_lr_mult == 2.0


@dataclass
class _Inner:
    a: int = 1
    b: int = 2


@dataclass
class _Outer:
    inner: _Inner | None = field(default_factory=lambda: _Inner(b=5))


def test_a_partial_section_starts_from_its_fields_defaults():
    """``X | None`` alike; DG-Net's measure (256 images) and pretraining's synthetic set
    (1,200 identities) are not their classes' defaults."""
    assert from_dict(_Outer, {"inner": {"a": 3}}).inner == _Inner(3, 5)
    assert from_dict(_Outer, {"inner": None}).inner is None
    assert from_dict(_Outer, {}).inner == _Inner(1, 5)
    d = from_dict(DGNetConfig, {"version": CONFIG_VERSION, "measure": {"seed": 3}})
    assert (d.measure.images, d.measure.seed) == (256, 3)
    p = from_dict(PretrainConfig, {"version": CONFIG_VERSION, "synthetic": {"cams": 4}})
    assert (p.synthetic.ids, p.synthetic.cams) == (1200, 4)


def test_each_file_of_a_base_chain_is_migrated_by_its_own_version(tmp_path):
    """A version-1 file over a shipped (version-2) base, and a version-2 file over a version-1
    base; the plugin a version-1 file leaves to its base places its options."""
    tiny = find_config("tiny")
    (tmp_path / "old_over_new.yaml").write_text(
        f"_base_: {tiny}\nlabels: {{strategy: lsr, epsilon: 0.3}}\n"
    )
    cfg = load_config(ReIDTrainConfig, tmp_path / "old_over_new.yaml")
    assert (cfg.labels.strategy, cfg.labels.options.epsilon) == ("lsr", 0.3)
    assert cfg.optim == load_config(ReIDTrainConfig, "tiny").optim  # the base still counts

    (tmp_path / "old.yaml").write_text(
        "task: gan\nmodel: {arch: wgangp}\ntrain: {lr: 3.0e-4, critic_steps: 2, d_steps: 4}\n"
    )
    (tmp_path / "new_over_old.yaml").write_text(
        "_base_: old.yaml\nversion: 2\noptim: {dis: {lr: 1.0e-4}}\n"
        "train: {options: {gp_weight: 5.0}}\n"
    )
    gan = load_config(GanConfig, tmp_path / "new_over_old.yaml")
    assert (gan.optim.gen.lr, gan.optim.dis.lr) == (3e-4, 1e-4)
    assert (gan.train.options.critic_steps, gan.train.options.gp_weight) == (2, 5.0)

    (tmp_path / "lsr.yaml").write_text(f"_base_: {tiny}\nversion: 2\nlabels: {{strategy: lsr}}\n")
    (tmp_path / "child.yaml").write_text("_base_: lsr.yaml\nlabels: {epsilon: 0.25}\n")
    assert load_config(ReIDTrainConfig, tmp_path / "child.yaml").labels.options.epsilon == 0.25


def test_a_version_1_override_in_the_current_layout():
    assert migrate_override(GanConfig, "train.lr=1e-4") == [
        "optim.gen.lr=1e-4",
        "optim.dis.lr=1e-4",
    ]
    # a moved value keeps its text
    assert migrate_override(GanConfig, "train.betas=[0.5,0.9]") == [
        "optim.gen.betas=[0.5,0.9]", "optim.dis.betas=[0.5,0.9]"
    ]  # fmt: skip
    assert migrate_override(GanConfig, "train.critic_steps=2") == ["train.options.critic_steps=2"]
    # inside a config: the arch's option moves, another arch's did nothing and is dropped
    wgan = {"model": {"arch": "wgangp"}}
    assert migrate_override(GanConfig, "train.critic_steps=2", wgan) == [
        "train.options.critic_steps=2"
    ]  # fmt: skip
    assert migrate_override(GanConfig, "train.d_steps=2", wgan) == []
    assert migrate_overrides(ReIDTrainConfig, ["labels.epsilon=0.2"], {}) == []  # baseline's
    assert migrate_overrides(
        ReIDTrainConfig, ["labels.strategy=lsr", "labels.epsilon=0.2"], {}
    ) == ["labels.strategy=lsr", "labels.options.epsilon=0.2"]
    assert migrate_override(ReIDTrainConfig, "labels.epsilon=0.2") == ["labels.options.epsilon=0.2"]
    whole = migrate_override(ReIDTrainConfig, "labels={strategy: fapl_dist, temperature: 0.5}")
    _, cfg = load_task_config("tiny", whole)
    assert (cfg.labels.strategy, cfg.labels.options.temperature) == ("fapl_dist", 0.5)
    for item in ("optim.gen.lr=1e-4", "train.options={}", "train.min_iters=null", "seed=3"):
        assert migrate_override(GanConfig, item) == [item]  # nothing moved: as written
    assert migrate_override(DGNetConfig, "optim.gen.lr=2") == ["optim.gen.lr=2"]


def _saved_version_1(cfg: Any, path: Path, **lists: list[str]) -> None:
    """``cfg`` as a pipeline folder of version 1 holds it: no version, the lists as given."""
    data = {k: v for k, v in to_dict(cfg).items() if k != "version"}
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump({**data, **lists}))


def test_a_pipeline_folder_of_version_1_continues(tmp_path):
    """Its override lists migrate when read: the folder continues with its own pipeline file
    (version 1 too) or with the lists in today's keys, and its GAN loads with them."""
    keys = ["data.synthetic.ids=0", "data.root=/data/m", "generated=10", "seeds=[0]"]
    old = ["train.cluster_epochs=scaled", "train.lr=2.0e-4", "train.critic_steps=3"]
    new = ["train.cluster_epochs=scaled", "optim.gen.lr=2.0e-4", "optim.dis.lr=2.0e-4"]
    lists = {"gan_overrides": old, "recipe_overrides": ["labels.epsilon=0.2"]}
    for again in ("its own file", "today's keys"):
        out = tmp_path / again.replace(" ", "_")
        _saved_version_1(load_config(SlsrConfig, "slsr_tiny", keys), out, **lists)
        assert load_config(SlsrConfig, out / "config.yaml").gan_overrides == new
        if again == "its own file":  # the user's pipeline file, as version 1 wrote it
            _saved_version_1(load_config(SlsrConfig, "slsr_tiny", keys), tmp_path / "f", **lists)
            cfg = load_config(SlsrConfig, tmp_path / "f" / "config.yaml")
        else:
            given = [*keys, f"gan_overrides={new}", "recipe_overrides=[labels.options.epsilon=0.2]"]
            cfg = load_config(SlsrConfig, "slsr_tiny", given)
        record_slsr(cfg, out)  # not refused: the same pipeline
        saved = load_config(SlsrConfig, out / "config.yaml")
        assert saved.version == CONFIG_VERSION and saved.gan_overrides == new
        assert saved.recipe_overrides == ["labels.options.epsilon=0.2"]
        gan_job = SeedPlanner(saved, out, 0, "/data/m").generated()[1]
        gan = RunSpec.from_params(gan_job.params).load()
        assert (gan.optim.gen.lr, gan.optim.dis.lr, gan.train.cluster_epochs) == (
            2e-4, 2e-4, "scaled"
        )  # fmt: skip


def test_a_reproduction_of_version_1_continues(tmp_path):
    base = {"table": "lsro2", "root": "/data/m", "version": CONFIG_VERSION}
    new = from_dict(
        ReproduceConfig,
        {
            **base,
            "overrides": ["labels.options.epsilon=0.2"],
            "gan_overrides": ["optim.gen.betas=[0.5, 0.9]", "optim.dis.betas=[0.5, 0.9]"],
        },
    )
    _saved_version_1(new, tmp_path, overrides=["labels.epsilon=0.2"],
                     gan_overrides=["train.betas=[0.5, 0.9]"])  # fmt: skip
    assert check_pipeline(new, tmp_path, MAY_CHANGE, "a reproduction")
    # the command line's flags are today's keys: an old one is not migrated there
    flags = from_dict(ReproduceConfig, {**base, "gan_overrides": ["train.lr=1e-4"]})
    assert flags.gan_overrides == ["train.lr=1e-4"]


def test_a_pretraining_of_version_1_migrates_its_recipes_overrides(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "task: pretrain\nrecipe: gan/dcgan_tiny\n"
        "recipe_overrides: [train.lr=2.0e-4, train.critic_steps=3, train.d_steps=2]\n"
    )
    cfg = load_config(PretrainConfig, tmp_path / "p.yaml")
    # critic_steps is WGAN-GP's option: dcgan_tiny never read it
    assert cfg.recipe_overrides == [
        "optim.gen.lr=2.0e-4",
        "optim.dis.lr=2.0e-4",
        "train.options.d_steps=2",
    ]  # fmt: skip


def test_a_refused_resume_names_a_plugins_option():
    """labels.options is compared key by key (data.options stays one value); a GAN may
    change on resume exactly what the resume applies."""
    _, a = load_task_config("tiny", ["labels.strategy=lsr"])
    _, b = load_task_config("tiny", ["labels.strategy=lsr", "labels.options.epsilon=0.3",
                                     "data.options={split: 1}"])  # fmt: skip
    assert config_differences(to_dict(a), to_dict(b), TASKS.get("reid").resumable_keys) == [
        "data.options", "labels.options.epsilon"
    ]  # fmt: skip
    gan = TASKS.get("gan")
    _, g = load_task_config("gan/dcgan_tiny")
    for key, resumable in [
        ("optim.gen.lr=1.0e-4", True), ("optim.dis.betas=[0.0, 0.9]", True),
        ("train.epochs=9", True), ("train.options.d_steps=2", True), ("data.workers=3", True),
        ("optim.gen.weight_decay=0.1", False), ("optim.dis.name=sgd", False),
        ("train.grid_size=4", False), ("train.ema=0.9", False),
    ]:  # fmt: skip
        _, h = load_task_config("gan/dcgan_tiny", [key])
        differ = config_differences(to_dict(g), to_dict(h), gan.resumable_keys)
        assert differ == ([] if resumable else [key.split("=")[0]]), key


def test_a_strategy_takes_exactly_its_own_options():
    @dataclass
    class Wider(LSR.Options):
        extra: int = 0

    with pytest.raises(ConfigError, match="labels.options: .*Wider given to strategy lsr"):
        LSR(3, LabelsConfig(strategy="lsr", options=Wider()))
    assert LSR(3, LabelsConfig(strategy="lsr")).options.epsilon == 0.1

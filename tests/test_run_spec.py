"""Typed run specs: a plan's training jobs are built from a DataSource, typed changes, a seed
and threads, and every pipeline plans the same jobs as before (tests/golden/plans.json), so a
run folder made then is still the same job, done or resumed; typed changes load the configs
the old ``key=value`` strings gave, and a wrong key is the loader's did-you-mean error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genreid.core.changes import Change, parse_changes, value_text
from genreid.core.config import load_config, replace_config, to_dict
from genreid.core.errors import ConfigError
from genreid.engine.reproduce.plan import Job
from genreid.engine.reproduce.runner import stage_of
from genreid.engine.runspec import DataSource, RunSpec, task_of
from genreid.engine.tasks import TASKS
from genreid.engine.tasks.reid import ReIDTrainConfig
from tests.run_spec_plans import TMP, build_plans, read_plans

# parser options of several types (the round trip of each is what matters, not the parser)
OPTIONS = [
    {"split": 3},
    {"validation": 0.25, "validation_seed": 4},
    {"protocol": "new", "name": "cam a", "folder": "/data/x y"},
    {"cams": [1, 2, 3], "weights": [0.5, 1.5], "names": ["a", "b"]},
]


def _old_load(params: dict) -> dict:
    """A train job's config as the old params' ``key=value`` strings load it."""
    cls = TASKS.get(task_of(params["config"])).config_class
    return to_dict(load_config(cls, params["config"], params["overrides"]))


def test_every_pipeline_plans_the_jobs_it_planned_before(tmp_path):
    before, now = read_plans(), build_plans(tmp_path)
    now = json.loads(json.dumps(now).replace(str(tmp_path), TMP))
    assert set(before) <= set(now)  # a new table or pipeline case may be added
    loaded = 0
    for case, jobs in before.items():
        assert list(now[case]) == list(jobs), case  # the same job ids, in the same order
        for job, (kind, out, deps, params) in jobs.items():
            new_kind, new_out, new_deps, new_params = now[case][job]
            assert (new_kind, new_out, new_deps) == (kind, out, deps), (case, job)
            if kind != "train" or case.startswith("reproduce/"):
                assert new_params == params, (case, job)  # a table's runs: word for word
                continue
            # SLSR, the quickstart and pretraining make the same changes, some in another
            # order (the seed after a run's own keys), giving the same config
            assert new_params["config"] == params["config"]
            assert _old_load(new_params) == _old_load(params), (case, job)
            assert to_dict(RunSpec.from_params(new_params).load()) == _old_load(params)
            loaded += 1
    assert loaded == 22  # SLSR's 12, the quickstart's 8, pretraining's 2 training runs


def test_a_finished_run_folder_of_the_old_plan_is_skipped(tmp_path):
    """The runner decides "done" from the job's params: the new job reads the same epochs."""
    old = read_plans()["quickstart/options"]["lsro"][3]
    old = json.loads(json.dumps(old).replace(TMP, str(tmp_path)))
    new = build_plans(tmp_path)["quickstart/options"]["lsro"]
    new = json.loads(json.dumps(new).replace(TMP, str(tmp_path)))
    job = Job("lsro", "train", new[1], new[3], new[2], "lsro")
    epochs = load_config(ReIDTrainConfig, old["config"], old["overrides"]).train.epochs
    assert epochs == 3
    results = Path(job.out) / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps({"status": "done", "epochs_completed": epochs - 1}))
    assert not stage_of(job).done()  # cut short: resumed, not skipped
    results.write_text(json.dumps({"status": "done", "epochs_completed": epochs}))
    assert stage_of(job).done()


@pytest.mark.parametrize("options", OPTIONS)
def test_a_data_source_loads_as_the_old_strings_did(options):
    data = DataSource("viper", "/data/v", options)
    typed = RunSpec("train/tiny", data, seed=2).load()
    assert typed.data.options == options and typed.data.root == "/data/v"
    keyed = ["data.dataset=viper", "data.root=/data/v", "seed=2"]  # slsr's and reproduce's
    keyed += [f"data.options.{k}={v}" for k, v in options.items()]
    assert typed == load_config(ReIDTrainConfig, "train/tiny", keyed)
    whole = ["data.dataset=viper", "data.root=/data/v", f"data.options={json.dumps(options)}"]
    assert typed == load_config(ReIDTrainConfig, "train/tiny", [*whole, "seed=2"])  # quickstart
    assert [str(c) for c in data.changes()] == keyed[:2] + keyed[3:]  # the params' texts


def test_typed_values_need_no_quoting_that_strings_did():
    """A value that YAML would read as another type stays what it is; its text reads back."""
    odd = {"mode": "on", "empty": "", "none": None, "tiny": 1e-05, "nested": {"a": [1, "b"]}}
    cfg = RunSpec("train/tiny", DataSource("viper", "/d", odd)).load()
    assert cfg.data.options == odd
    for value in [*odd.values(), 3, True, "/a b/c", "a: b", [0.5, "x"]]:
        parsed = Change.parse(f"k={value_text(value)}").value
        assert parsed == value and type(parsed) is type(value), value


def test_a_wrong_key_is_the_loaders_did_you_mean_error():
    wrong = (Change("train.epohcs", 3),)
    with pytest.raises(ConfigError, match="unknown config key 'train.epohcs'.*'train.epochs'"):
        RunSpec("train/tiny", changes=wrong).load()
    loaded = load_config(ReIDTrainConfig, "train/tiny")
    with pytest.raises(ConfigError, match="Did you mean 'train.epochs'"):
        RunSpec(loaded, changes=wrong).load()
    with pytest.raises(ConfigError, match="train.epochs: expected an integer"):
        RunSpec(loaded, changes=(Change("train.epochs", "three"),)).load()
    with pytest.raises(ConfigError, match="empty key"):
        Change("train..epochs", 1)


def test_a_loaded_config_is_changed_by_typed_replacement():
    """The same config as the file loaded with the changes, a new plugin's options included."""
    loaded = load_config(ReIDTrainConfig, "train/tiny")
    keys = ["labels.strategy=fapl_dist", "labels.options.temperature=0.3", "seed=4"]
    changed = RunSpec(loaded, DataSource("viper", "/v", {"split": 1}), parse_changes(keys))
    assert changed.task() is TASKS.get("reid")
    assert changed.load() == load_config(
        ReIDTrainConfig, "train/tiny", ["data.dataset=viper", "data.root=/v", *keys,
                                        "data.options.split=1"]
    )  # fmt: skip
    assert changed.load().labels.options.temperature == 0.3
    assert loaded == load_config(ReIDTrainConfig, "train/tiny")  # the original is kept
    same = replace_config(loaded, [Change("labels.strategy", loaded.labels.strategy)])
    assert same == loaded


def test_job_params_carry_the_spec_and_read_back_to_it():
    spec = RunSpec("train/tiny", DataSource("viper", "/v", {"split": 2}),
                   parse_changes(["model.width=8"]), seed=5, threads=2, progress=False,
                   last=(Change("train.epochs", 4),))  # fmt: skip
    params = spec.params()
    assert params == {"config": "train/tiny", "overrides": [
        "data.dataset=viper", "data.root=/v", "data.options.split=2", "model.width=8", "seed=5",
        "train.progress=false", "train.threads=2", "train.epochs=4"]}  # fmt: skip
    back = RunSpec.from_params(params)
    assert back.params() == params and back.load() == spec.load()
    assert RunSpec.from_params(params, ["train.epochs=6"]).load().train.epochs == 6
    with pytest.raises(ConfigError, match="names its config"):
        RunSpec(spec.load()).params()

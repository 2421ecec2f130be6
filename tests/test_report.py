"""``genreid report``: two tiny re-ID runs and a GAN run compared in one self-contained page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.config import CONFIG_VERSION, load_config, to_dict
from genreid.engine.stages import eval_stage
from genreid.engine.tasks import load_any_config
from genreid.engine.tasks.gan import GanConfig, train_gan
from genreid.engine.tasks.reid import train
from genreid.eval.ranking.features import save_features
from genreid.reporting.run_report import current_config, flatten, hardest_queries
from tests.browser import open_page
from tests.test_gan_cli import CONFIGS as GAN_CONFIGS
from tests.test_gan_cli import TINY as GAN_TINY
from tests.test_train_engine import make_data, tiny_cfg

runner = CliRunner()


class Tables(HTMLParser):
    """Every table with an id: its body rows as (tr class, cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[tuple[str, list[str]]]] = {}
        self._id: str | None = None
        self._row: tuple[str, list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._id = a["id"]
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = (a.get("class") or "", [])
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._id:
            if self._row[1]:  # header rows hold <th> only
                self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[tuple[str, list[str]]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Baseline (evaluated: eval/ and features.npz), LSRO (final metrics only) and a DCGAN."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("runs")
    root, gen = make_data(tmp)
    base, lsro, gan = tmp / "base", tmp / "lsro", tmp / "gan"
    train(tiny_cfg(root, None), base)
    eval_stage(base, "market1501", root, rerank=True).run()
    train(tiny_cfg(root, gen, "labels.strategy=lsro", "train.eval_every=1", "seed=1"), lsro)
    cfg = load_config(GanConfig, GAN_CONFIGS / "dcgan_tiny.yaml", [f"data.root={root}", *GAN_TINY])
    train_gan(cfg, gan)
    torch.set_num_threads(threads)
    return base, lsro, gan


def _config(run: Path) -> dict[str, str]:
    return flatten(yaml.safe_load((run / "config.yaml").read_text()))


def test_report_compares_runs(runs, tmp_path):
    base, lsro, gan = runs
    out = tmp_path / "report.html"
    res = runner.invoke(app, ["report", str(base), str(lsro), str(gan), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output
    html = out.read_text()
    tables = _tables(html)
    assert [row[0] for _, row in tables["runs"]] == ["base", "lsro", "gan"]
    # (a) runs of two kinds: the highlighted rows are the shared keys whose values differ
    configs = [_config(r) for r in runs]
    shared = set.intersection(*map(set, configs))
    differ = {k for k in shared if len({c[k] for c in configs}) > 1}
    assert {row[0] for cls, row in tables["config-diff"] if cls == "diff"} == differ
    assert {row[0] for _, row in tables["config-same"]} == shared - differ
    assert all(cls == "diff" for cls, _ in tables["config-diff"])
    left_out = len(set().union(*configs) - shared)
    assert left_out > 0 and _left_out_line(left_out, "reid, gan") in html
    # (d) the results table holds each run's numbers (percent, one decimal)
    rows = {(row[0], row[1]): row[2:] for _, row in tables["results"]}
    evaluation = json.loads((base / "eval/results.json").read_text())["results"]
    for setting, name in (("plain", "plain"), ("rerank", "re-ranked")):
        m = evaluation[setting]
        want = [f"{100 * m[k]:.1f}" for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")]
        assert rows[("base", f"eval/results.json, {name}")] == want
    final = json.loads((lsro / "results.json").read_text())["final"]
    want = [f"{100 * final[k]:.1f}" for k in ("rank1", "rank5", "rank10")] + ["—"]
    want += [f"{100 * final[k]:.1f}" for k in ("mAP", "mINP")]
    assert rows[("lsro", f"results.json final (epoch {final['epoch']})")] == want
    assert not any(run == "gan" for run, _ in rows)
    # (b, c, e, f) and the notes of what a run cannot show
    assert html.count('alt="training curves"') == 1 and html.count('alt="CMC"') == 1
    assert "lsro: 8 of 8 images in" in html and "gan: figures" in html
    assert "gan: a GAN run: no re-ID evaluation" in html
    assert html.count('class="hard"') == 6 and "first true match at rank" in html
    assert "lsro: no features file" in html
    # self-contained: no script, nothing fetched from a network
    assert "<script" not in html and not re.search(r"(src|href)=\"(https?:)?//", html)
    shot = tmp_path / "report.png"
    errors = open_page(out, shot)
    assert errors == [], errors
    assert shot.read_bytes()[:4] == b"\x89PNG"


def test_only_diff_and_a_pipeline_folder(runs, tmp_path):
    base, lsro, _ = runs
    pipeline = tmp_path / "pretrain"  # a pipeline folder: config, env, a run inside
    (pipeline / "train").mkdir(parents=True)
    (pipeline / "config.yaml").write_text("task: pretrain\nseed: 0\nrecipe: train/tiny\n")
    (pipeline / "train" / "config.yaml").write_text("task: reid\n")
    (pipeline / "results.json").write_text('{"status": "do')  # cut short by a crash
    out = tmp_path / "r"
    out.mkdir()
    res = runner.invoke(app, ["report", str(base), str(lsro), "--out", str(out), "--only-diff"])
    assert res.exit_code == 0, res.output
    tables = _tables((out / "report.html").read_text())
    diff = {row[0] for _, row in tables["config-diff"]}
    assert diff == {"data.generated", "labels.strategy", "seed", "train.eval_every"}
    assert "config-same" not in tables and "env-same" not in tables
    res = runner.invoke(app, ["report", str(pipeline), "--out", str(tmp_path / "p.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "p.html").read_text()
    assert "pretrain: results.json unreadable" in html and "holds the runs train" in html
    assert "pretrain: no eval/results.json with a CMC" in html


def _left_out_line(count: int, kinds: str) -> str:
    return (
        f"{count} config keys left out: not every run has them (runs of different kinds: {kinds})"
    )


def _run_folder(folder: Path, config: dict) -> Path:
    """A minimal run folder: a config.yaml and nothing else."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def _report(tmp_path: Path, *args: str) -> str:
    out = tmp_path / "report.html"
    res = runner.invoke(app, ["report", *args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out.read_text()


GAN_LIKE = {
    "task": "gan", "seed": 0, "data": {"root": "/data", "height": 64},
    "model": {"arch": "dcgan", "nz": 100}, "train": {"epochs": 5, "lr": 0.0002, "beta1": 0.5},
}  # fmt: skip
REID_LIKE = {
    "task": "reid", "seed": 1, "data": {"root": "/data", "generated": None},
    "model": {"arch": "resnet50"}, "train": {"epochs": 5, "lr": 0.05},
    "labels": {"strategy": "lsro"},
}  # fmt: skip


def test_runs_of_different_kinds_compare_only_the_keys_they_share(tmp_path):
    gan = _run_folder(tmp_path / "gan", GAN_LIKE)
    reid = _run_folder(tmp_path / "reid", REID_LIKE)
    html = _report(tmp_path, str(gan), str(reid))
    tables = _tables(html)
    diff = {row[0]: row[1:] for _, row in tables["config-diff"]}
    assert diff == {
        "model.arch": ["dcgan", "resnet50"], "seed": ["0", "1"], "task": ["gan", "reid"],
        "train.lr": ["0.0002", "0.05"],
    }  # fmt: skip
    assert {row[0] for _, row in tables["config-same"]} == {"data.root", "train.epochs"}
    # data.height, model.nz, train.beta1 (GAN only), data.generated, labels.strategy (re-ID)
    assert html.count(_left_out_line(5, "gan, reid")) == 1
    assert "the tables below compare the 6 keys they share" in html
    assert "4 config keys differ between the runs:" in html  # none absent: no "—" legend
    html = _report(tmp_path, str(reid), str(gan), "--only-diff")
    assert _left_out_line(5, "reid, gan") in html  # said with --only-diff too
    assert {row[0] for _, row in _tables(html)["config-diff"]} == set(diff)
    assert "config-same" not in _tables(html)


def test_runs_of_one_kind_still_show_every_key(tmp_path):
    """Same kind: as before, a key one run lacks differs (shown as —), nothing left out."""
    a = _run_folder(tmp_path / "a", REID_LIKE)
    b = _run_folder(tmp_path / "b", {**REID_LIKE, "seed": 2, "labels": {}})
    html = _report(tmp_path, str(a), str(b))
    tables = _tables(html)
    rows = [row for _, row in tables["config-diff"]]  # keys every run has first
    assert rows == [["seed", "1", "2"], ["labels", "—", "{}"], ["labels.strategy", "lsro", "—"]]
    same = {row[0] for _, row in tables["config-same"]}
    assert same == {"data.root", "data.generated", "model.arch", "task", "train.epochs",
                    "train.lr"}  # fmt: skip
    assert "3 config keys differ between the runs (— : absent):" in html
    assert "keys left out" not in html and 'id="config-left-out"' not in html


# version 1's effective values of shipped configs, as a run folder of that code held them
VERSION_1 = json.loads((Path(__file__).parent / "golden" / "config_values.json").read_text())


@pytest.mark.parametrize("name", ["train/tiny", "gan/wgangp_tiny", "dgnet/dgnet_tiny"])
def test_old_and_new_run_configs_of_the_same_settings_compare_like_keys(name, tmp_path):
    """A version-1 config.yaml (flat strategy and GAN keys, the GAN's lr in train) and today's
    for the same settings: the report migrates the old one, so no key differs."""
    old = {}
    for key, value in VERSION_1["configs"][name].items():  # dotted keys -> nested mapping
        *parents, last = key.split(".")
        node = old
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    _, cfg = load_any_config(name)
    new = to_dict(cfg)
    assert "version" not in old and new["version"] == CONFIG_VERSION
    saved_old, saved_new = flatten(old), flatten(new)
    if name != "dgnet/dgnet_tiny":  # version 2 moved keys of these two
        assert set(saved_old) != set(saved_new) - {"version"}
    a = _run_folder(tmp_path / "old", old)
    b = _run_folder(tmp_path / "new", new)
    html = _report(tmp_path, str(a), str(b))
    tables = _tables(html)
    assert "config-diff" not in tables and "Every config key has the same value" in html
    assert {row[0] for _, row in tables["config-same"]} == set(saved_new)
    assert "old: config.yaml of version 1, shown migrated to version 2" in html
    assert "new: config.yaml" not in html  # a current config is shown as saved


def test_a_config_that_does_not_load_is_shown_as_saved(tmp_path):
    """A version newer than this genreid's, or keys its task does not know: as saved, noted."""
    config, why = current_config(REID_LIKE)  # version 1, but train.lr is no re-ID key
    assert config is REID_LIKE and why.startswith("config.yaml of version 1 shown as saved")
    html = _report(tmp_path, str(_run_folder(tmp_path / "a", {**REID_LIKE, "version": 99})))
    assert dict(row for _, row in _tables(html)["config-same"])["version"] == "99"
    assert "a: config.yaml of version 99 shown as saved: it does not load" in html


def test_not_a_run_is_a_clear_error(runs, tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "nowhere"), "--out", "x.html"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "error: expected a run folder with config.yaml" in res.stderr
    res = runner.invoke(app, ["report", str(runs[0].parent), "--out", "x.html"])
    assert res.exit_code == 1 and "found a folder of runs (base, gan, lsro)" in res.stderr


def test_hardest_queries_rank_worst_first_match_first(tmp_path):
    g = np.eye(4, dtype=np.float32)  # gallery ids 1..4, one per axis, camera 2
    q = np.stack([g[0], g[2] + 0.5 * g[1], g[3] + 0.6 * g[1] + 0.3 * g[2]])  # ids 1, 2, 3
    path = save_features(
        tmp_path / "f.npz", q, g, [1, 2, 3], [1, 2, 3, 4], [1, 1, 1], [2, 2, 2, 2],
        [f"q{i}.jpg" for i in range(3)], [f"g{i}.jpg" for i in range(4)],
    )  # fmt: skip
    hard = hardest_queries(path, count=3, topk=2)
    assert [h.query.caption for h in hard] == ["query 2: id 3", "query 1: id 2", "query 0: id 1"]
    assert [h.first_rank for h in hard] == [3, 2, 1]
    assert np.allclose([h.ap for h in hard], [1 / 3, 1 / 2, 1])
    assert [t.cls for t in hard[0].matches] == ["miss", "miss"]
    assert [t.cls for t in hard[2].matches] == ["match", "miss"]
    assert [t.path for t in hard[1].matches] == ["g2.jpg", "g1.jpg"]

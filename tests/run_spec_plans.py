"""The plans of every pipeline (reproduce tables, SLSR, quickstart, pretraining) on fixed
inputs, as plain data: tests/golden/plans.json holds them as the planners wrote them before
run specs were typed, so a run folder of then is still the same job now (test_run_spec.py).

Write the file again (only when a plan is meant to change): ``python -m tests.run_spec_plans``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from genreid.core.config import load_config
from genreid.engine.pretrain import PretrainConfig, pretrain_jobs
from genreid.engine.quickstart import QuickPlanner
from genreid.engine.reproduce.plan import (
    Context,
    plan_table,
    replicates,
    split_count,
    tuning_plan,
)
from genreid.engine.reproduce.spec import load_table, table_names
from genreid.engine.runspec import DataSource
from genreid.engine.slsr import SlsrConfig, slsr_jobs
from tests.fixtures import make_market_tree

GOLDEN = Path(__file__).resolve().parent / "golden" / "plans.json"
TMP = "<TMP>"  # the temporary folder, in the saved plans
OPTIONS = {"validation": 0.25, "validation_seed": 3}  # parser options of several types
RECIPE = ["model.pretrained=null", "train.epochs=1", "data.height=32"]


def _jobs(jobs: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Job id -> [kind, out, deps, params], the temporary folder written as <TMP>; a render's
    and an export's params are left out (a SyntheticSpec, a pipeline's config: not planned
    from run specs, and they grow with every new key)."""
    plain = {j.id: [j.kind, j.out, j.deps, {} if j.kind in ("render", "export") else j.params]
             for j in jobs.values()}  # fmt: skip
    return json.loads(json.dumps(plain, default=str).replace(str(tmp), TMP))


def _reproduce(tmp: Path) -> dict[str, Any]:
    """Every shipped table at both scales on its own dataset (one split, one seed); one
    table also with parser options, a validation share, user overrides and re-ranking."""
    out: dict[str, Any] = {}
    for name in table_names():
        spec = load_table(name)
        choices = {n: c.value for n, c in spec.choices.items()}
        for scale in ("tiny", "paper"):
            splits = 1 if split_count(spec.dataset) > 1 else None
            ctx = Context(scale, spec.dataset, "/data/x", tmp / name, replicates(
                spec.dataset, 1, splits), lambda options: 632, threads=2,
                unlabeled=("cuhk03", "/data/u"))  # fmt: skip
            out[f"reproduce/{name}/{scale}"] = _jobs(plan_table(spec, ctx, choices).jobs, tmp)
    spec = load_table("fapl10")
    ctx = Context("tiny", "viper", "/data/v", tmp / "opts", replicates("viper", 1, 2),
                  lambda options: 316, options={"validation_seed": 4}, validation=0.2,
                  threads=3, reid_overrides=["train.epochs=2"],
                  gan_overrides=["train.min_iters=null"], rerank=True)  # fmt: skip
    choices = {n: c.value for n, c in spec.choices.items()}
    out["reproduce/fapl10/options"] = _jobs(plan_table(spec, ctx, choices).jobs, tmp)
    tune = tuning_plan(spec, ctx, choices, "temperature")[0]
    out["reproduce/fapl10/tune"] = _jobs(tune.jobs, tmp)
    return out


def _slsr(tmp: Path, root: Path) -> dict[str, Any]:
    keys = [f"data.root={root}", "data.synthetic.ids=0", f"data.options={OPTIONS}",
            "seeds=[0, 1]", "k=[2, 3]", "threads=3", f"recipe_overrides={RECIPE}",
            "gan_overrides=[train.min_iters=null]"]  # fmt: skip
    cfg = load_config(SlsrConfig, "slsr_tiny", keys)
    return {"slsr": _jobs(slsr_jobs(cfg, tmp / "slsr", str(root)), tmp)}


def _quickstart(tmp: Path, root: Path) -> dict[str, Any]:
    out = {}
    for name, options, threads in (("plain", {}, None), ("options", OPTIONS, 2)):
        data = DataSource("market1501", str(root), options)
        planner = QuickPlanner(tmp / "quick" / name, data, 7, threads)
        images = len(data.load().train)
        jobs = [*planner.gan(2, 3, "gan/dcgan_tiny_pretrained", images), *planner.reid(3)]
        out[f"quickstart/{name}"] = _jobs({j.id: j for j in jobs}, tmp)
    return out


def _pretrain(tmp: Path) -> dict[str, Any]:
    out = {}
    for name in ("pretrain_tiny", "pretrain_gan_tiny"):
        cfg = load_config(PretrainConfig, name, ["threads=2", f"recipe_overrides={RECIPE}"])
        out[f"pretrain/{name}"] = _jobs(
            pretrain_jobs(cfg, tmp / name, tmp / name / "synthetic"), tmp
        )
    return out


def read_plans() -> dict[str, Any]:
    """The saved plans: case -> job id -> [kind, out, deps, params]."""
    plans: dict[str, Any] = {}
    for case, job, value in json.loads(GOLDEN.read_text()):
        plans.setdefault(case, {})[job] = value
    return plans


def build_plans(tmp: Path) -> dict[str, Any]:
    """Every plan, on a small Market-1501 tree made under ``tmp``."""
    root = make_market_tree(tmp / "market", num_train_ids=4, num_test_ids=3)
    return {**_reproduce(tmp), **_slsr(tmp, root), **_quickstart(tmp, root),
            **_pretrain(tmp)}  # fmt: skip


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        plans = build_plans(Path(folder))
    lines = [json.dumps([case, job, value]) for case, jobs in plans.items()
             for job, value in jobs.items()]  # fmt: skip
    GOLDEN.write_text("[\n" + ",\n".join(lines) + "\n]\n")  # one job a line
    print(f"{GOLDEN}: {sum(len(p) for p in plans.values())} jobs")

"""Table specs and planning of ``genreid reproduce``: every table of METHODS section 8 is
there with the paper's numbers, cells become the right runs per split and seed, and shared
work (a GAN, its samples, a baseline shown in every column, k-means) is planned once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from genreid.cli import app
from genreid.core.config import shipped_configs
from genreid.core.errors import ConfigError, RegistryError
from genreid.engine.reproduce.pipeline import ReproduceConfig, list_tables
from genreid.engine.reproduce.plan import (
    Context,
    check_rows,
    plan_table,
    replicates,
    tuning_plan,
)
from genreid.engine.reproduce.runner import check_jobs
from genreid.engine.reproduce.spec import find_table, load_table, normal_name, table_names

METHODS = Path(__file__).resolve().parents[2] / "shared" / "METHODS.md"
# METHODS section 8: (paper, table)
SECTION_8 = [
    ("LSRO", "2"), ("LSRO", "4"), ("SLSR", "4"), ("SLSR", "5"), ("FAPL", "III"), ("FAPL", "IV"),
    ("FAPL", "V"), ("FAPL", "VI"), ("FAPL", "X"), ("DG-Net", "3"),
]  # fmt: skip


OWN_TABLES = ["center", "family"]  # tables of genreid's own, after the papers', by name
NOT_IN_THE_PAPERS = {
    ("fapl10", "fapl_dist_tuned"), ("dgnet3", "prim_only_training"),
    ("dgnet3", "fine_only_training"),
}  # fmt: skip


def context(tmp_path: Path, dataset: str = "viper", splits: int | None = 3, **kw) -> Context:
    reps = replicates(dataset, kw.pop("seeds", 1), splits)
    return Context("tiny", dataset, "/data/x", tmp_path, reps, lambda options: 632, **kw)


def default_choices(spec) -> dict:
    return {n: c.value for n, c in spec.choices.items()}


def test_every_table_of_methods_section_8_is_listed():
    names = [normal_name(f"{paper} table {table}") for paper, table in SECTION_8]
    assert table_names() == [*names, *OWN_TABLES]  # METHODS section 8's order, then genreid's
    if METHODS.is_file():  # the shared reference, when this checkout has it
        section = METHODS.read_text().split("## 8.", 1)[1]
        rows = re.findall(r"^\| (LSRO|SLSR|FAPL|DG-Net) \| (\w+) \|", section, re.M)
        assert [normal_name(f"{p} {t}") for p, t in rows] == names
    res = CliRunner().invoke(app, ["reproduce", "--list"])
    assert res.exit_code == 0
    listed = [line.split()[0] for line in res.output.splitlines() if not line.startswith(" ")]
    assert listed == [*names, *OWN_TABLES]
    assert "sweeps: strategy {lsro, all_in_one, pseudo_label}" in res.output
    assert "default: market1501, tiny" in res.output
    assert [row[0] for row in list_tables()] == [*names, *OWN_TABLES]


def test_table_names_in_any_spelling_and_specs_are_not_run_configs():
    assert normal_name("FAPL-III") == "fapl3" and normal_name("fapl_X") == "fapl10"
    assert normal_name("DG-Net 3") == "dgnet3" and normal_name("LSRO table 2") == "lsro2"
    assert normal_name("fapl-IV") == "fapl4" and normal_name("FAPL VI") == "fapl6"
    assert find_table("FAPL-X") == find_table("fapl10")
    with pytest.raises(RegistryError, match="expected one of lsro2, lsro4"):
        find_table("lsro3")
    assert not any(name.startswith("reproduce/") for name in shipped_configs())


SPEC_HEAD = """title: t
paper: p
sweeps: s
rows: [{name: a, recipe: fapl}]
columns: [{name: c}]
recipe: fapl
"""


def test_included_fragments_merge_and_the_tables_own_entries_win(tmp_path):
    """A table's include: brings the fragment's recipes and choices; an entry of the same
    name in the table replaces the fragment's; the shipped FAPL tables share one."""
    spec_file = tmp_path / "t.yaml"
    spec_file.write_text(
        SPEC_HEAD + "include: [fapl_center]\nrecipes:\n  fapl:\n    tiny: train/tiny\n"
        "    paper: train/ide_paper\nchoices:\n  center_update: {value: epoch, source: me}\n"
    )
    spec = load_table(spec_file)
    assert spec.recipes["fapl"]["tiny"].overrides == []  # the table's own recipe
    assert spec.choices["center_update"].value == "epoch"  # the table's own choice
    assert spec.choices["center_ratio"].value == 0.03  # the fragment's
    for table in ("fapl3", "fapl4", "fapl5", "fapl6", "fapl10", "family"):
        shared = load_table(table)
        assert shared.choices["center_ratio"].value == 0.03, table
        assert shared.choices["center_update"].value == "step", table
    assert "optim.lr=0.001" not in load_table("family").recipes["fapl"]["paper"].overrides
    assert "optim.lr=0.001" in load_table("fapl3").recipes["fapl"]["paper"].overrides
    assert "shared" not in table_names()


def test_a_missing_or_malformed_fragment_names_the_known_ones(tmp_path):
    spec_file = tmp_path / "t.yaml"
    spec_file.write_text(SPEC_HEAD + "include: [fapl_centre]\nrecipes: {}\n")
    with pytest.raises(ConfigError, match="no shared fragment 'fapl_centre'; known: fapl_center"):
        load_table(spec_file)


def test_every_spec_loads_with_the_papers_numbers():
    for name in table_names():
        if name in OWN_TABLES:  # genreid's own comparison: no paper's table behind it
            assert not load_table(name).paper_results
            continue
        spec = load_table(name)
        block = spec.paper_for(spec.dataset)
        assert block is not None and block.dataset == spec.dataset, name
        for row, column in spec.cells():  # the paper gives both numbers for every cell ...
            added = (name, row) in NOT_IN_THE_PAPERS  # rows the papers' tables do not have
            assert added or (row, column) in block.values, (name, row, column)
    lsro2 = load_table("lsro2").paper_for("market1501")
    assert lsro2.values[("24000", "lsro")] == {"rank1": 78.06, "mAP": 56.23}
    fapl3 = load_table("fapl3").paper_for("market1501")
    assert fapl3.values[("24000", "fapl_dist")] == {"rank1": 83.43, "mAP": 63.23}
    assert fapl3.values[("36000", "dmprl1")] == {"rank1": 78.95, "mAP": 57.42}
    dgnet = load_table("dgnet3")
    assert dgnet.paper_for("msmt17").values[("both", "ours")] == {"rank1": 77.2, "mAP": 52.3}
    assert dgnet.paper_for("viper").dataset == "market1501"  # another dataset: the first one
    slsr5 = load_table("slsr5")
    assert slsr5.paper_for("cuhk03").values[("slsr", "ours")] == {"rank1": 91.03, "mAP": 94.21}
    assert load_table("fapl6").reference("24000", "iwgan_dist") == ("24000", "dcgan_dist")
    assert load_table("fapl6").reference("24000", "dcgan_dist") is None
    fapl10 = load_table("fapl10")
    assert fapl10.reference("fapl_onehot", "ours") == ("center", "ours")
    assert fapl10.reference("center", "ours") == ("baseline", "ours")


def test_replicates_of_split_and_single_split_datasets():
    assert [r.name for r in replicates("viper", 1, None)][-1] == "split9_seed0"
    reps = replicates("prid2011", 2, 2)
    assert [(r.name, r.seed) for r in reps] == [
        ("split0_seed0", 0), ("split1_seed0", 1), ("split0_seed1", 10), ("split1_seed1", 11),
    ]  # fmt: skip
    assert [(r.name, r.seed) for r in replicates("market1501", 3, None)][2] == ("seed2", 2)
    with pytest.raises(ConfigError, match="has one split; use --seeds"):
        replicates("market1501", 1, 2)
    with pytest.raises(ConfigError, match="has 10 splits"):
        replicates("viper", 1, 11)


def test_lsro2_plan_shares_the_gan_and_the_baseline(tmp_path):
    spec = load_table("lsro2")
    plan = plan_table(spec, context(tmp_path), default_choices(spec))
    kinds = [j.kind for j in plan.jobs.values()]
    # per split: 1 GAN + 1 sample, 1 baseline + 5 x 3 runs, each evaluated
    assert kinds.count("sample") == 3 and kinds.count("eval") == 3 * 16
    assert kinds.count("train") == 3 * (1 + 16)
    assert len(plan.runs) == 3 * 18  # every cell on every split
    base = {r.run for r in plan.runs if r.row == "0"}
    assert base == {str(tmp_path / f"runs/0/split{s}_seed0") for s in range(3)}
    sample = plan.jobs["generated/dcgan/split1_seed0"]
    assert sample.params["num"] == round(36000 * 632 / 12936)  # the largest count, once
    assert sample.deps == ["gan/dcgan/split1_seed0"]
    gan = plan.jobs["gan/dcgan/split1_seed0"].params
    assert gan["config"] == "gan/dcgan_tiny_pretrained"
    assert "data.options.split=1" in gan["overrides"] and "seed=1" in gan["overrides"]
    run = plan.jobs["runs/12000__pseudo_label/split2_seed0"]
    o = run.params["overrides"]
    assert "labels.strategy=pseudo_label" in o and "labels.gen_start_epoch=default" in o
    assert f"data.max_generated={round(12000 * 632 / 12936)}" in o
    assert f"data.generated={tmp_path / 'generated/dcgan/split2_seed0'}" in o
    assert "data.dataset=viper" in o and "data.options.split=2" in o and "seed=2" in o
    assert run.deps == ["generated/dcgan/split2_seed0"]
    assert plan.jobs["runs/12000__pseudo_label/split2_seed0/eval"].deps == [run.id]


def test_fapl3_smprl_reads_the_baseline_of_its_own_split(tmp_path):
    spec = load_table("fapl3")
    plan = plan_table(spec, context(tmp_path, splits=2), default_choices(spec))
    job = plan.jobs["runs/24000__smprl/split1_seed0"]
    assert (
        f"labels.options.smprl_from={tmp_path / 'runs/0/split1_seed0'}" in job.params["overrides"]
    )
    assert "runs/0/split1_seed0" in job.deps
    fd = plan.jobs["runs/24000__fapl_dist/split0_seed0"].params["overrides"]
    assert "labels.options.temperature=1" in fd and "labels.center_lambda=auto" in fd


@pytest.mark.parametrize("table", ["fapl3", "fapl4", "fapl5", "fapl6", "fapl10", "family"])
def test_fapl_center_term_is_the_ratio_at_tiny_scale_and_the_papers_lambda_at_paper_scale(
    tmp_path, table
):
    """Every FAPL cell: lambda matched to the table's ratio (auto) on the tiny net, the paper's
    literal lambda on ResNet-50; cells without FAPL or a center row carry no center term."""
    from genreid.core.config import load_config
    from genreid.engine.tasks.reid import ReIDTrainConfig

    spec = load_table(table)
    choices = default_choices(spec)
    for scale in ("tiny", "paper"):
        ctx = context(tmp_path / scale, splits=1)
        ctx.scale = scale
        plan = plan_table(spec, ctx, choices)
        fapl = 0
        for job in plan.jobs.values():
            if job.kind != "train" or job.params["config"].startswith(("gan/", "dgnet/")):
                continue  # GANs and DG-Net have no center term
            cfg = load_config(ReIDTrainConfig, job.params["config"], job.params["overrides"])
            lam, strategy = cfg.labels.center_lambda, cfg.labels.strategy
            if strategy.startswith("fapl") or (table == "fapl10" and "center" in job.id):
                fapl += 1
                if scale == "tiny":
                    assert lam == "auto" and cfg.labels.center_ratio in (
                        choices["center_ratio"],
                        choices.get("ratio_1e3"),
                        choices.get("ratio_1e5"),
                    ), job.id
                else:
                    assert lam in (1e-3, 1e-4, 1e-5), job.id
            else:
                assert lam is None, job.id  # baseline and the other strategies: no center term
        assert fapl > 0


def test_slsr4_clusters_once_and_one_gan_per_k(tmp_path):
    spec = load_table("slsr4")
    plan = plan_table(spec, context(tmp_path, splits=1), default_choices(spec))
    assert [j.id for j in plan.jobs.values() if j.kind == "clusters"] == ["clusters/split0_seed0"]
    cl = plan.jobs["clusters/split0_seed0"]
    assert cl.params["ks"] == [2, 3, 4, 5] and cl.deps == ["runs/0/split0_seed0"]
    gan = plan.jobs["gan/dcgan_k4/split0_seed0"]
    assert gan.deps == [cl.id]
    assert (
        f"data.clusters={tmp_path / 'clusters/split0_seed0/clusters_k4.csv'}"
        in (gan.params["overrides"])
    )
    assert "train.cluster_epochs=scaled" in gan.params["overrides"]
    run = plan.jobs["runs/12000__k4/split0_seed0"].params["overrides"]
    assert f"labels.options.clusters={tmp_path / 'clusters/split0_seed0/clusters_k4.csv'}" in run
    assert "model.arch=bottleneck_tiny" in run and "labels.options.cluster_ids=majority" in run


def test_slsr5_paper_scale_recipes_and_the_k_choice(tmp_path):
    spec = load_table("slsr5")
    ctx = context(tmp_path, splits=1)
    ctx.scale = "paper"
    plan = plan_table(spec, ctx, {**default_choices(spec), "k": 4})
    jobs = plan.jobs
    assert jobs["runs/baseline/split0_seed0"].params["config"] == "train/bottleneck_paper"
    assert jobs["runs/lsro_ide/split0_seed0"].params["config"] == "train/ide_paper"
    assert jobs["gan/dcgan_k_k4/split0_seed0"].params["config"] == "gan/dcgan_paper"
    slsr = jobs["runs/slsr/split0_seed0"].params["overrides"]
    assert f"labels.options.clusters={tmp_path / 'clusters/split0_seed0/clusters_k4.csv'}" in slsr


def test_dgnet3_teacher_is_the_baseline_run(tmp_path):
    spec = load_table("dgnet3")
    ctx = context(tmp_path, "market1501", None, seeds=2, dgnet_overrides=["train.epochs=1"])
    plan = plan_table(spec, ctx, default_choices(spec))
    joint = plan.jobs["runs/joint/seed1"]
    assert joint.params["config"] == "dgnet/dgnet_tiny_both"
    assert joint.deps == ["runs/baseline/seed1"]
    assert f"teacher={tmp_path / 'runs/baseline/seed1'}" in joint.params["overrides"]
    assert "model.beta=0.5" in joint.params["overrides"]
    assert joint.params["overrides"][-1] == "train.epochs=1"  # DG-Net overrides, last
    assert "train.epochs=1" not in plan.jobs["runs/baseline/seed1"].params["overrides"]
    assert plan.jobs["runs/baseline/seed1"].params["config"] == "train/tiny"
    assert plan.jobs["runs/fine_only_training/seed0"].deps == []  # no teacher: L_prim is off
    prim_alone = plan.jobs["runs/prim_only_training/seed0"]
    assert prim_alone.params["config"] == "dgnet/dgnet_tiny_prim"
    assert prim_alone.deps == ["runs/baseline/seed0"]


def test_dgnet3_paper_rows_are_test_features_of_one_training(tmp_path):
    """DG-Net Table 3's f_prim, f_fine and both are three test features of one model trained
    with both losses: one training job, three evaluations with the three features."""
    spec = load_table("dgnet3")
    plan = plan_table(spec, context(tmp_path, "market1501", None, seeds=2), default_choices(spec))
    runs = {(r.row, r.replicate): r for r in plan.runs}
    for seed in ("seed0", "seed1"):
        paper_rows = [runs[(row, seed)] for row in ("prim", "fine", "both")]
        assert {r.run for r in paper_rows} == {str(tmp_path / "runs/joint" / seed)}
        evals = [plan.jobs[f"runs/joint/{seed}/{Path(r.eval).name}"] for r in paper_rows]
        assert [e.params["overrides"] for e in evals] == [
            ["model.feature=prim"], ["model.feature=fine"], ["model.feature=both", "model.beta=0.5"]
        ]  # fmt: skip
        assert all(e.deps == [f"runs/joint/{seed}"] and e.out == paper_rows[0].run for e in evals)
        assert len({r.eval for r in paper_rows}) == 3
    trainings = [j.id for j in plan.jobs.values() if j.kind == "train"]
    assert sorted(trainings) == sorted(
        f"runs/{name}/seed{s}" for name in ("baseline", "joint", "prim_only_training",
                                            "fine_only_training") for s in (0, 1)
    )  # fmt: skip
    check_jobs(plan.jobs)  # model.feature is a key of the joint run's config
    spec.row("prim").eval_overrides = ["model.feature=nope"]
    with pytest.raises(ConfigError, match="model.feature"):
        check_jobs(plan_table(spec, context(tmp_path, "market1501", None), {"beta": 0.5}).jobs)


def test_dgnet3_teacher_follows_the_released_baseline_at_paper_scale(tmp_path):
    """At paper scale the baseline (DG-Net's teacher) is Person_reID_baseline_pytorch's
    ResNet-50 + ClassBlock: bottleneck 512 with no activation, SGD 0.05 / 0.005, 60 epochs."""
    from genreid.core.config import load_config
    from genreid.engine.tasks.reid import ReIDTrainConfig
    from genreid.models.reid import ModelConfig, build_model

    spec = load_table("dgnet3")
    ctx = context(tmp_path, "market1501", None)
    ctx.scale = "paper"
    plan = plan_table(spec, ctx, default_choices(spec))
    base = plan.jobs["runs/baseline/seed0"].params
    assert base["config"] == "train/dgnet_teacher_paper"
    joint = plan.jobs["runs/joint/seed0"].params["overrides"]
    assert f"teacher={tmp_path / 'runs/baseline/seed0'}" in joint
    cfg = load_config(ReIDTrainConfig, base["config"], base["overrides"])
    assert (cfg.model.arch, cfg.model.backbone, cfg.model.activation) == (
        "bottleneck", "resnet50", "none"
    )  # fmt: skip
    assert (cfg.model.bottleneck_dim, cfg.model.dropout) == (512, 0.5)
    o = cfg.optim
    assert (o.name, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.9, True, 5e-4)
    assert o.lr == pytest.approx(0.005) and o.lr * o.head_lr_mult == pytest.approx(0.05)
    assert (o.schedule, o.milestones, o.gamma, cfg.train.epochs) == ("step", [40], 0.1, 60)
    assert (cfg.data.size, cfg.data.pad, cfg.data.flip, cfg.train.batch_size) == (
        (256, 128), 10, True, 32
    )  # fmt: skip
    assert cfg.eval.flip  # pool5 + flipped pool5, as the baseline's test.py
    # no activation: the BN output goes straight to dropout; the weights keep their names
    plain = build_model(ModelConfig(arch="bottleneck_tiny", activation="none"), 5)
    leaky = build_model(ModelConfig(arch="bottleneck_tiny"), 5)
    assert isinstance(plain.head[2], torch.nn.Identity)
    assert isinstance(leaky.head[2], torch.nn.LeakyReLU)
    assert plain.state_dict().keys() == leaky.state_dict().keys()
    with pytest.raises(ConfigError, match="model.activation"):
        ModelConfig(activation="relu").check()


def test_slsr4_compares_densenet_with_densenet_at_paper_scale(tmp_path):
    """SLSR Table 4's numbers are DenseNet-121's (its K = 3 / 12k cell is the workshop paper's
    SLS+DenseNet row): every cell trains the DenseNet recipe, row 0 is the DenseNet baseline."""
    spec = load_table("slsr4")
    ctx = context(tmp_path, "market1501", None)
    ctx.scale = "paper"
    plan = plan_table(spec, ctx, default_choices(spec))
    configs = {j.params["config"] for j in plan.jobs.values() if j.id.startswith("runs/")
               and j.kind == "train"}  # fmt: skip
    assert configs == {"train/bottleneck_densenet_paper"}
    paper = spec.paper_for("market1501").values
    assert paper[("12000", "k3")] == {"rank1": 92.43, "mAP": 79.08}
    assert paper[("0", "k3")] == {"rank1": 90.05, "mAP": 74.16}  # DenseNet Basel.
    slsr5 = " ".join(load_table("slsr5").notes)
    assert "18,000" in slsr5 and "84.62 / 87.40" in slsr5 and "Verif.-Identif. + LSRO" in slsr5


def test_lsro4_needs_another_dataset_for_its_real_images(tmp_path):
    spec = load_table("lsro4")
    with pytest.raises(ConfigError, match="--unlabeled-root"):
        plan_table(spec, context(tmp_path), {})
    plan = plan_table(spec, context(tmp_path, unlabeled=("cuhk03", "/data/c")), {})
    real = plan.jobs["generated/other_real/split0_seed0"]
    assert real.kind == "real" and real.params["dataset"] == "cuhk03"
    assert real.params["num"] == round(12000 * 632 / 12936)


def test_tuning_runs_on_validation_identities_and_shares_the_gan(tmp_path):
    spec = load_table("fapl10")
    plan, runs = tuning_plan(spec, context(tmp_path, splits=2, validation=0.2),
                             default_choices(spec), "temperature")  # fmt: skip
    assert list(runs) == [1, 0.3, 0.1, 0.03] and all(len(r) == 2 for r in runs.values())
    folders = {Path(r.run).parent.name for rs in runs.values() for r in rs}
    assert folders == {f"fapl_dist_tuned-temperature={t}" for t in (1, 0.3, 0.1, 0.03)}
    assert sum(j.kind == "train" and "gan/" in j.id for j in plan.jobs.values()) == 2
    job = plan.jobs["tune/runs/fapl_dist_tuned-temperature=0.1/split1_seed0"]
    assert "labels.options.temperature=0.1" in job.params["overrides"]
    assert "data.options.validation=0.2" in job.params["overrides"]
    assert (
        "data.options.validation=0.2"
        in plan.jobs["tune/gan/dcgan/split1_seed0"].params["overrides"]
    )
    assert plan.jobs["tune/runs/fapl_dist_tuned-temperature=0.1/split1_seed0/eval"].params[
        "options"
    ] == {"split": 1, "validation": 0.2}


def test_without_tuning_the_tuned_row_is_the_same_run_as_its_paper_row(tmp_path):
    spec = load_table("fapl10")
    plan = plan_table(spec, context(tmp_path, splits=1), default_choices(spec))
    runs = {r.row: r.run for r in plan.runs}
    assert runs["fapl_dist_tuned"] == runs["fapl_dist"]
    plan = plan_table(
        spec, context(tmp_path, splits=1), {**default_choices(spec), "temperature": 0.1}
    )
    runs = {r.row: r.run for r in plan.runs}
    assert runs["fapl_dist_tuned"] != runs["fapl_dist"]


def test_bad_configs_fail_with_a_message_naming_the_fix(tmp_path):
    from genreid.engine.reproduce.pipeline import resolve

    with pytest.raises(ConfigError, match="--root"):
        resolve(ReproduceConfig(table="lsro2"))
    with pytest.raises(ConfigError, match="not choices of fapl10; it has center_ratio"):
        resolve(ReproduceConfig(table="fapl10", root="/x", choices={"lam": 1}))
    out = ["--out", str(tmp_path / "t")]
    res = CliRunner().invoke(app, ["reproduce", "lsro2", "--root", "/x", "--scale", "big", *out])
    assert res.exit_code == 1 and "error: --scale: expected tiny or paper" in res.output
    res = CliRunner().invoke(app, ["reproduce"])
    assert res.exit_code == 1 and "genreid reproduce --list" in res.output
    res = CliRunner().invoke(app, ["reproduce", "nope", "--root", "/x", *out])
    assert res.exit_code == 1 and "error: unknown table 'nope'" in res.output


@pytest.mark.parametrize("scale", ["tiny", "paper"])
def test_every_run_of_every_table_has_a_valid_config(tmp_path, scale):
    """Each cell's recipe + overrides loads (e.g. dgnet_paper takes loss.fine, train/tiny
    model.arch=bottleneck_tiny): a table fails on a bad key before anything runs."""
    for name in table_names():
        spec = load_table(name)
        ctx = context(tmp_path, "market1501", None, unlabeled=("cuhk03", "/c"))
        ctx.scale = scale
        check_jobs(plan_table(spec, ctx, default_choices(spec)).jobs)


def test_family_plans_every_method_on_the_splits_gans(tmp_path):
    spec = load_table("family")
    plan = plan_table(spec, context(tmp_path, "viper", 2), default_choices(spec))
    cells = {r.row for r in plan.runs}
    assert cells == {"baseline", "baseline_steps", "lsr", "lsro", "all_in_one", "pseudo_label",
                     "smprl", "dmprl1", "dmprl2", "slsr", "fapl_onehot", "fapl_onehot_late",
                     "fapl_dist", "dgnet"}  # fmt: skip
    jobs = plan.jobs
    # the step-matched baseline: real images only, the epochs of 30 over 632 real + 632
    # generated images (the context's 632 training images, 1x generated), no GAN needed
    steps = jobs["runs/baseline_steps/split0_seed0"]
    assert steps.params["overrides"][-1] == "train.epochs=60" and steps.deps == []
    assert not any(o.startswith("data.generated") for o in steps.params["overrides"])
    longer = context(tmp_path / "u", "viper", 1, reid_overrides=["train.epochs=10"])
    user = plan_table(spec, longer, default_choices(spec), ["baseline_steps"])
    assert (
        user.jobs["runs/baseline_steps/split0_seed0"].params["overrides"][-1] == "train.epochs=20"
    )
    dg = jobs["runs/dgnet/split1_seed0"]
    assert dg.params["config"] == "dgnet/dgnet_tiny_both"
    assert dg.deps == ["runs/baseline/split1_seed0"]  # the split's baseline is its teacher
    smprl = jobs["runs/smprl/split0_seed0"]
    assert "runs/baseline/split0_seed0" in smprl.deps
    assert smprl.deps == ["runs/baseline/split0_seed0", "generated/dcgan/split0_seed0"]
    slsr = jobs["runs/slsr/split0_seed0"]
    assert "generated/dcgan_k_k3/split0_seed0" in slsr.deps  # k = 3 per-cluster GANs
    kinds = [j.kind for j in jobs.values()]
    assert kinds.count("sample") == 2 * 2  # per split: the DCGAN's and the per-cluster GANs'
    # --rows: only those rows and the baseline they are tested against; smprl's and DG-Net's
    # link to the baseline run is a dependency either way
    part = plan_table(spec, context(tmp_path, "viper", 2), default_choices(spec), ["smprl"])
    assert {r.row for r in part.runs} == {"baseline", "smprl"}
    assert not any("dcgan_k" in j for j in part.jobs) and len(part.runs) == 2 * 2
    with pytest.raises(ConfigError, match="did you mean 'smprl'"):
        check_rows(spec, ["smprI"])


def test_paper_scale_plan_estimates_gpu_hours_from_measured_speeds(tmp_path):
    """lsro2 at paper scale on 3 VIPeR-sized splits (632 training images), by hand: ide_paper
    50 epochs of 632 real images, plus n generated from epoch 0 (LSRO, All-in-one) or from
    epoch 20 (Pseudo label, LSRO 4.2), at 1,958.4 images/s; dcgan_paper 30 epochs of 632 at
    3,400.3 images/s. DG-Net has no GPU figure: counted, not guessed."""
    from genreid.engine.reproduce.estimate import estimate_gpu_hours

    spec = load_table("lsro2")
    ctx = context(tmp_path)
    ctx.scale = "paper"
    est = estimate_gpu_hours(plan_table(spec, ctx, default_choices(spec)).jobs, ctx.real_images)
    counts = [round(k * 632 / 12936) for k in (12000, 18000, 24000, 30000, 36000)]
    per_split = 50 * 632 + sum(3 * 50 * 632 + (50 + 50 + 30) * n for n in counts)
    assert est.jobs == {"train/ide_paper": 3 * 16, "gan/dcgan_paper": 3}
    assert est.hours["train/ide_paper"] == pytest.approx(3 * per_split / 1958.4 / 3600)
    assert est.hours["gan/dcgan_paper"] == pytest.approx(3 * 30 * 632 / 3400.3 / 3600)
    assert est.unmeasured == {}
    dgnet = load_table("dgnet3")
    ctx.replicates = replicates("market1501", 1, None)
    est = estimate_gpu_hours(plan_table(dgnet, ctx, default_choices(dgnet)).jobs, lambda o: 12936)
    assert est.unmeasured == {"dgnet/dgnet_paper": 3, "train/dgnet_teacher_paper": 1}
    assert est.total == 0 and "not measured on a GPU" in "\n".join(est.lines())
    assert "unknown" in est.lines()[0]

"""Two-process DDP on CPU (gloo): both ranks finish with identical weights (re-ID with FAPL
centers, and GANs, which get DDP from the loop without code of their own)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.fixtures import make_market_tree
from tests.test_train_engine import CONFIGS, make_data, tiny_cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world: int, port: int) -> None:
    """What torchrun sets for each process."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )


def _worker(rank: int, world: int, port: int, root: str, gen: str, out: str) -> None:
    _join(rank, world, port)
    from genreid.engine.loop import Loop
    from genreid.engine.tasks.reid import ReIDTask

    cfg = tiny_cfg(
        Path(root),
        Path(gen),
        "labels.strategy=fapl_onehot",
        "train.threads=1",
        "train.batch_size=4",
        "train.eval_every=1",
    )
    task = ReIDTask(cfg)
    Loop(task, out).run()
    state = {"model": task.model.state_dict(), "labels": task.strategy.state_dict()}
    torch.save(state, Path(out) / f"rank{rank}.pt")


def test_two_process_ddp_identical_weights(tmp_path):
    root, gen = make_data(tmp_path)
    out = tmp_path / "run"
    mp.spawn(_worker, args=(2, _free_port(), str(root), str(gen), str(out)), nprocs=2, join=True)
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    for part in ("model", "labels"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    ckpt = torch.load(out / "checkpoints/last.pt", weights_only=True)
    assert ckpt["loop"]["epoch"] == 2
    for k, v in ckpt["modules"]["model"].items():
        assert torch.equal(v, a["model"][k])
    assert (out / "results.json").is_file()
    metrics = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    assert len(metrics) == 2  # written once, by rank 0


def _gan_worker(rank: int, world: int, port: int, root: str, out: str, arch: str) -> None:
    _join(rank, world, port)
    from genreid.core.config import load_config
    from genreid.engine.loop import Loop
    from genreid.engine.tasks.gan import GanConfig, GanTask

    cfg = load_config(
        GanConfig,
        None,
        [
            f"data.root={root}", f"model.arch={arch}", "data.height=32", "data.width=16",
            "model.width=4", "model.depth=2", "train.batch_size=2", "train.progress=false",
            "train.log_every=1", "train.grid_size=4",
            "train.device=cpu", "train.threads=1", "train.epochs=2",
            *(["train.options.critic_steps=2"] if arch == "wgangp" else []),
        ],
    )  # fmt: skip
    task = GanTask(cfg)
    results = Loop(task, out).run()
    state = {"G": task.G.state_dict(), "D": task.D.state_dict(), "results": results}
    torch.save(state, Path(out) / f"rank{rank}.pt")


@pytest.mark.parametrize("arch", ["dcgan", "wgangp"])
def test_two_process_gan_ddp(tmp_path, arch):
    """The GAN task runs under DDP unchanged: ranks split the data, keep identical weights."""
    root = make_market_tree(tmp_path / "market", size=(16, 32))  # 12 training images
    out = tmp_path / "run"
    mp.spawn(_gan_worker, args=(2, _free_port(), str(root), str(out), arch), nprocs=2, join=True)
    a = torch.load(out / "rank0.pt", weights_only=False)
    b = torch.load(out / "rank1.pt", weights_only=False)
    for part in ("G", "D"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    res = a["results"]
    # 12 images, 6 per rank, batch 2 per rank: 3 discriminator steps per epoch on each rank
    assert res["world_size"] == 2 and res["discriminator_steps"] == 6 and res["status"] == "done"
    ckpt = torch.load(out / "checkpoints/last.pt", weights_only=True)
    for k, v in ckpt["modules"]["G"].items():
        assert torch.equal(v, a["G"][k])


@pytest.mark.slow
def test_torchrun_cli(tmp_path):
    """The documented launch: torchrun --nproc_per_node 2 -m genreid.cli train ..."""
    root, gen = make_data(tmp_path)
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "genreid.cli",
        "train",
        "--config",
        str(CONFIGS / "tiny.yaml"),
        f"data.root={root}",
        f"data.generated={gen}",
        "labels.strategy=lsro",
        "data.height=32",
        "data.width=16",
        "model.width=8",
        "model.pretrained=null",
        "train.epochs=1",
        "train.batch_size=4",
        "train.progress=false",
        "--out",
        str(run),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["world_size"] == 2 and "rank1" in results["final"]
    # LSRO's uniform targets, summed over both ranks: every identity gets 1/K of the mass
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    last = [r for r in rows if "gen/effective_identities" in r][-1]
    k = last["gen/effective_identities"]
    assert last["gen/top_identity_share"] == pytest.approx(1 / k)
    assert last["gen/target_entropy"] == pytest.approx(1.0)

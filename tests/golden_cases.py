"""Known-answer training runs that pin the engine's numerics through refactors.

Each case trains a tiny run on a fixed toy dataset and digests every tensor of the final
weights. ``tests/golden/training.json`` holds the digests recorded by the engine before the
training loop was restructured, one entry per machine kind (torch build and CPU kernels) they
were recorded on; ``python -m tests.golden_cases`` records this machine's entry (a new kind:
with the code of a commit that passes the test elsewhere; a change that alters results on
purpose: every kind again, in a commit of its own that says so).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from pathlib import Path

import torch

GOLDEN = Path(__file__).resolve().parent / "golden" / "training.json"
STRATEGIES = (
    "baseline", "lsr", "lsro", "all_in_one", "pseudo_label", "smprl", "dmprl1", "dmprl2",
    "slsr", "fapl_onehot", "fapl_dist",
)  # fmt: skip


def fingerprint() -> dict[str, str]:
    """What bitwise equality depends on: torch build and the CPU's kernels."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "torch": torch.__version__,
        "capability": torch.backends.cpu.get_cpu_capability(),
        "cpu": cpu or platform.processor(),
    }


def digest(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """sha256 over every tensor's name and bytes, plus float sums for a tolerant check."""
    h = hashlib.sha256()
    total, abs_total = 0.0, 0.0
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(t.numpy().tobytes())
        if t.is_floating_point():
            total += float(t.double().sum())
            abs_total += float(t.double().abs().sum())
    return {"sha256": h.hexdigest(), "sum": total, "abs_sum": abs_total}


def make_reid_data(tmp: Path) -> tuple[Path, Path, Path]:
    """A toy Market tree, 8 generated images in two clusters, and a cluster CSV."""
    from genreid.data.generated import write_manifest
    from tests.fixtures import make_market_tree, write_jpeg

    root = make_market_tree(
        tmp / "market", num_train_ids=4, num_test_ids=3, images_per_camera=2, size=(16, 32)
    )
    gen = tmp / "gen"
    for i in range(8):
        write_jpeg(gen / f"g{i}.jpg", 500 + i, (32, 32))
    write_manifest(gen, [{"path": f"g{i}.jpg", "cluster": i % 2} for i in range(8)])
    train = sorted(p for p in (root / "bounding_box_train").glob("0*.jpg"))
    rows = [f"{p.name},{i % 2}" for i, p in enumerate(p for p in train if p.name[:4] != "0000")]
    clusters = tmp / "clusters.csv"
    clusters.write_text("path,cluster\n" + "\n".join(rows) + "\n")
    return root, gen, clusters


def reid_overrides(root: Path, gen: Path | None, *extra: str) -> list[str]:
    out = [
        f"data.root={root}", "data.height=32", "data.width=16", "data.pad=2",
        "data.erasing_p=0.5", "train.batch_size=8", "train.epochs=2", "train.progress=false",
        "train.eval_every=1", "model.width=8", "train.device=cpu", "train.threads=1",
        # train/tiny's defaults when the digests were recorded (random weights, IDE dropout)
        "model.pretrained=null", "model.dropout=0.75",
        "train.precision=fp32", "train.compile=false",  # the reference path, whatever auto picks
        *extra,
    ]  # fmt: skip
    if gen is not None:
        out.append(f"data.generated={gen}")
    return out


def gan_overrides(root: Path, arch: str, *extra: str) -> list[str]:
    return [
        f"data.root={root}", f"model.arch={arch}", "data.height=32", "data.width=16",
        "model.width=4", "model.depth=2", "train.batch_size=4", "train.progress=false",
        "train.log_every=1", "train.grid_size=4", "train.device=cpu",
        "train.epochs=2", "train.precision=fp32", "train.compile=false",
        *(["train.options.critic_steps=2"] if arch == "wgangp" else []),  # WGAN-GP's own key
        *extra,
    ]  # fmt: skip


def run_cases(tmp: Path, train_reid: Callable, train_gan: Callable, read_state: Callable):
    """name -> digest for every case; the callables adapt to the engine's current API.

    ``train_reid(overrides, out)``, ``train_gan(overrides, out)``, and
    ``read_state(run, part)`` returning a flat name -> tensor dict of a run's final weights
    (part: ``model``, ``labels``, ``G`` or ``D``).
    """
    torch.set_num_threads(1)
    root, gen, clusters = make_reid_data(tmp)
    out: dict[str, dict] = {}
    for strategy in STRATEGIES:
        extra = [f"labels.strategy={strategy}"]
        if strategy == "smprl":
            extra.append(f"labels.options.smprl_from={tmp / 'reid_baseline'}")
        if strategy == "slsr":  # the rule of the recorded run; majority is the case below
            extra += [f"labels.options.clusters={clusters}", "labels.options.cluster_ids=any"]
        uses_gen = strategy not in ("baseline", "lsr")
        run = tmp / f"reid_{strategy}"
        results = train_reid(reid_overrides(root, gen if uses_gen else None, *extra), run)
        state = {f"model.{k}": v for k, v in read_state(run, "model").items()}
        state.update({f"labels.{k}": v for k, v in read_state(run, "labels").items()})
        out[f"reid/{strategy}"] = {**digest(state), "final": results.get("final", {})}
    # slsr with the default identity sets (majority): each identity mostly in one cluster
    by_id = tmp / "clusters_by_id.csv"
    train = sorted(p for p in (root / "bounding_box_train").glob("0*.jpg") if p.name[:4] != "0000")
    rows = [f"{p.name},{(int(p.name[:4]) // 2 + (i % 4 == 3)) % 2}" for i, p in enumerate(train)]
    by_id.write_text("path,cluster\n" + "\n".join(rows) + "\n")
    extra = ["labels.strategy=slsr", f"labels.options.clusters={by_id}"]
    run = tmp / "reid_slsr_majority"
    results = train_reid(reid_overrides(root, gen, *extra), run)
    state = {f"model.{k}": v for k, v in read_state(run, "model").items()}
    out["reid/slsr_majority"] = {**digest(state), "final": results.get("final", {})}
    for arch in ("dcgan", "wgangp"):
        run = tmp / f"gan_{arch}"
        train_gan(gan_overrides(root, arch), run)
        out[f"gan/{arch}"] = {
            **digest({f"G.{k}": v for k, v in read_state(run, "G").items()}),
            "D": digest(read_state(run, "D"))["sha256"],
        }
    gan_clusters = tmp / "gan_clusters.csv"
    train = sorted(p for p in (root / "bounding_box_train").glob("0*.jpg"))
    rows = [f"{p.name},{i % 2}" for i, p in enumerate(p for p in train if p.name[:4] != "0000")]
    gan_clusters.write_text("path,cluster\n" + "\n".join(rows) + "\n")
    run = tmp / "gan_clusters"
    train_gan(gan_overrides(root, "dcgan", f"data.clusters={gan_clusters}"), run)
    for c in (0, 1):
        sub = run / f"cluster_{c}"
        out[f"gan/clusters/{c}"] = digest(read_state(sub, "G"))
    return out


def _current_api():
    """Adapters to the engine as it is today."""
    from genreid.core.checkpoint import load_checkpoint, module_state
    from genreid.core.config import load_config
    from genreid.engine.tasks.gan import GanConfig
    from genreid.engine.tasks.gan import train_gan as _train_gan
    from genreid.engine.tasks.reid import ReIDTrainConfig
    from genreid.engine.tasks.reid import train as _train

    def train_reid(overrides, out):
        return _train(load_config(ReIDTrainConfig, "train/tiny", overrides), out)

    def train_gan(overrides, out):
        return _train_gan(load_config(GanConfig, None, overrides), out)

    def read_state(run, part):
        return module_state(load_checkpoint(Path(run) / "checkpoints/last.pt"), part)

    return train_reid, train_gan, read_state


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cases = run_cases(Path(tmp), *_current_api())
    here = fingerprint()
    machines = json.loads(GOLDEN.read_text())["machines"] if GOLDEN.is_file() else []
    machines = [m for m in machines if m["fingerprint"] != here] + [
        {"fingerprint": here, "cases": cases}
    ]
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps({"machines": machines}, indent=1) + "\n")
    print(f"wrote {GOLDEN} ({len(cases)} cases for {here}; {len(machines)} machine kinds)")


if __name__ == "__main__":
    main()

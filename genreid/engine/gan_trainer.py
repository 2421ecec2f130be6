"""GAN training: DCGAN / WGAN-GP loops, exact resume, divergence guards, per-cluster runs.

An *iteration* is ``d_steps`` (DCGAN) or ``critic_steps`` (WGAN-GP) discriminator updates, each
on its own real batch, followed by ``g_steps`` generator updates. An epoch is one pass over the
real training images (incomplete last batch dropped); iterations may straddle epochs.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from tqdm import tqdm

from genreid.config import ConfigError, to_dict
from genreid.data.errors import DatasetError
from genreid.data.image_dataset import EpochSampler, GanTransform, ImageDataset, to_tensor
from genreid.data.records import ImageRecord
from genreid.engine.checkpoint import (
    atomic_save,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from genreid.engine.gan_config import GanConfig, d_steps_per_iter, resolve
from genreid.engine.run import RunDir
from genreid.engine.sampling import grid_image
from genreid.models.gan import build_gan


class TrainingStopped(RuntimeError):
    """Training stopped on a NaN/inf loss or a collapsed discriminator; the message says why."""


class RunFolderError(ValueError):
    """An output folder that cannot be started or resumed as asked."""


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"train.device={name} but no CUDA device is available; use train.device=cpu"
        )
    return torch.device(name)


def training_records(cfg: GanConfig) -> list[ImageRecord]:
    """The real training images of ``data.dataset`` at ``data.root`` (never query/gallery)."""
    from genreid.data.datasets import load_dataset

    ds = load_dataset(cfg.data.dataset, cfg.data.root, **cfg.data.options)
    records = [r for r in ds.train if not r.generated]
    if not records:
        raise DatasetError(
            f"{cfg.data.dataset} at {cfg.data.root} has no training images; a GAN needs the "
            "training split (e.g. Market-1501's bounding_box_train)."
        )
    return records


def read_cluster_manifest(
    path: str | Path, cfg: GanConfig, records: list[ImageRecord]
) -> dict[int, list[ImageRecord]]:
    """Training records grouped by the ``cluster`` column of a ``path,cluster`` CSV.

    Paths may be absolute, relative to the CSV's folder or to ``data.root``, or bare file
    names when those are unique among the training images.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(
            f"data.clusters: expected a CSV file with columns path,cluster, found nothing at "
            f"{path}. Write one line per training image (e.g. from the SLSR k-means step)."
        )
    by_path = {str(Path(r.path).resolve()): r for r in records}
    names: dict[str, list[ImageRecord]] = {}
    for r in records:
        names.setdefault(Path(r.path).name, []).append(r)
    root = Path(cfg.data.root).expanduser()
    groups: dict[int, list[ImageRecord]] = {}
    seen: set[str] = set()
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "cluster"} <= set(reader.fieldnames):
            raise DatasetError(
                f"{path}: expected a header line 'path,cluster', found {reader.fieldnames}."
            )
        for row in reader:
            line = reader.line_num
            rel = (row["path"] or "").strip()
            try:
                cluster = int(row["cluster"])
            except (TypeError, ValueError):
                cluster = -1
            if cluster < 0:
                raise DatasetError(
                    f"{path}:{line}: expected cluster to be an integer >= 0, found "
                    f"{row['cluster']!r}."
                )
            rec = None
            p = Path(rel).expanduser()
            for cand in [p] if p.is_absolute() else [path.parent / p, root / p]:
                rec = by_path.get(str(cand.resolve()))
                if rec is not None:
                    break
            if rec is None and len(names.get(p.name, [])) == 1:
                rec = names[p.name][0]
            if rec is None:
                raise DatasetError(
                    f"{path}:{line}: {rel!r} is not a training image of {cfg.data.dataset} at "
                    f"{root}. GANs train on training images only (never query or gallery); "
                    "list bounding_box_train-style images, relative to data.root or absolute."
                )
            if rec.path in seen:
                raise DatasetError(f"{path}:{line}: {rel!r} is listed twice; keep one row.")
            seen.add(rec.path)
            groups.setdefault(cluster, []).append(dataclasses.replace(rec, cluster=cluster))
    if not groups:
        raise DatasetError(f"{path}: expected at least one path,cluster row, found none.")
    return dict(sorted(groups.items()))


def cluster_seed(seed: int, cluster: int) -> int:
    """Seed of one cluster's GAN: different per cluster, fixed by the run seed."""
    return seed * 1009 + cluster + 1


class GanSteps:
    """Generator, discriminator, their Adam optimisers and one update of each (no data, no I/O).

    ``check(what, loss)`` sees every loss before its backward pass and may raise to stop.
    """

    def __init__(
        self,
        cfg: GanConfig,
        device: torch.device,
        check: Callable[[str, torch.Tensor], float] | None = None,
    ) -> None:
        self.cfg, self.device = cfg, device
        self.G, self.D = build_gan(cfg)
        self.G.to(device)
        self.D.to(device)
        betas = tuple(cfg.train.betas)
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.train.lr, betas=betas)
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.train.lr, betas=betas)
        self.check = check or (lambda what, loss: float(loss.detach()))

    def d_step(self, real: torch.Tensor) -> dict[str, float]:
        """One discriminator (critic) update on a real batch and as many fresh fakes."""
        z = self.G.sample_z(real.shape[0]).to(self.device)
        with torch.no_grad():
            fake = self.G(z)
        if self.cfg.model.arch == "dcgan":
            lr_, lf = self.D(real), self.D(fake)
            loss = F.binary_cross_entropy_with_logits(
                lr_, torch.ones_like(lr_)
            ) + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
            stats = {"d/real": torch.sigmoid(lr_).mean(), "d/fake": torch.sigmoid(lf).mean()}
        else:
            sr, sf = self.D(real), self.D(fake)
            gp = gradient_penalty(self.D, real, fake)
            gap = sr.mean() - sf.mean()
            loss = -gap + self.cfg.train.gp_weight * gp
            stats = {"d/real": sr.mean(), "d/fake": sf.mean(), "wgan/gap": gap, "wgan/gp": gp}
        out = {"loss/d": self.check("discriminator loss", loss)}
        out.update({k: float(v.detach()) for k, v in stats.items()})
        self.optD.zero_grad(set_to_none=True)
        loss.backward()
        self.optD.step()
        return out

    def g_step(self, batch_size: int) -> float:
        """One generator update (non-saturating loss for DCGAN, -E D(fake) for WGAN-GP)."""
        self.D.requires_grad_(False)
        try:
            z = self.G.sample_z(batch_size).to(self.device)
            out = self.D(self.G(z))
            if self.cfg.model.arch == "dcgan":
                loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
            else:
                loss = -out.mean()
            value = self.check("generator loss", loss)
            self.optG.zero_grad(set_to_none=True)
            loss.backward()
            self.optG.step()
        finally:
            self.D.requires_grad_(True)
        return value


class GanTrainer:
    """Trains one generator/discriminator pair on a list of real images inside a RunDir."""

    def __init__(
        self,
        cfg: GanConfig,
        records: list[ImageRecord],
        run: RunDir,
        seed: int,
        cluster: int | None = None,
        label: str = "",
    ) -> None:
        self.cfg, self.run, self.seed, self.cluster = cfg, run, seed, cluster
        self.label = label
        self.device = pick_device(cfg.train.device)
        seed_everything(seed)
        self.steps = GanSteps(cfg, self.device, check=self._check)
        self.G, self.D = self.steps.G, self.steps.D
        self.optG, self.optD = self.steps.optG, self.steps.optD
        gz = torch.Generator().manual_seed(seed + 7)
        self.fixed_z = self.G.sample_z(cfg.train.grid_size, gz)
        self.records = records
        self.batch_size = min(cfg.train.batch_size, len(records))
        self.dataset = ImageDataset(records, GanTransform(cfg.data.size, cfg.data.flip))
        self.sampler = EpochSampler(len(records), seed)
        self.loader_gen = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            drop_last=True,
            num_workers=cfg.data.num_workers,
            generator=self.loader_gen,
            pin_memory=self.device.type == "cuda",
        )
        self.n_d = d_steps_per_iter(cfg)
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # real batches consumed in the current epoch
        self.d_count = 0  # discriminator updates so far
        self.iteration = 0  # generator phases so far
        self.bad_streak = 0  # consecutive iterations that look collapsed
        self.acc: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.saved_at: tuple[int, int] | None = None
        self.train_seconds = 0.0

    # --- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "arch": self.cfg.model.arch,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "optG": self.optG.state_dict(),
            "optD": self.optD.state_dict(),
            "rng": rng_state(),
            "loader_rng": self.loader_gen.get_state(),
            "fixed_z": self.fixed_z,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "d_count": self.d_count,
            "iteration": self.iteration,
            "bad_streak": self.bad_streak,
            "acc": dict(self.acc),
            "train_seconds": self.train_seconds,
            "cluster": self.cluster,
            "config": to_dict(self.cfg),
        }

    def save(self) -> None:
        """Write checkpoints/last.pt, but never a state with non-finite weights."""
        for name, model in (("generator", self.G), ("discriminator", self.D)):
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                self._stop(f"the {name} weights became NaN or inf", _ADVICE_NAN)
        atomic_save(self.state(), self.run.last_checkpoint)
        self.saved_at = (self.epoch, self.iteration)

    def load(self) -> None:
        ckpt = load_checkpoint(self.run.last_checkpoint, map_location="cpu")  # RNG states: CPU
        if ckpt.get("arch") != self.cfg.model.arch:
            raise RunFolderError(
                f"{self.run.last_checkpoint} holds a {ckpt.get('arch')} model but the config "
                f"says model.arch={self.cfg.model.arch}; resume with the run's own config."
            )
        self.G.load_state_dict(ckpt["G"])
        self.D.load_state_dict(ckpt["D"])
        self.optG.load_state_dict(ckpt["optG"])
        self.optD.load_state_dict(ckpt["optD"])
        for opt in (self.optG, self.optD):  # a resume may change lr/betas on purpose
            for group in opt.param_groups:
                group["lr"], group["betas"] = self.cfg.train.lr, tuple(self.cfg.train.betas)
        set_rng_state(ckpt["rng"])
        self.loader_gen.set_state(ckpt["loader_rng"])
        self.fixed_z = ckpt["fixed_z"].cpu()
        for key in ("epoch", "batch_in_epoch", "d_count", "iteration", "bad_streak"):
            setattr(self, key, int(ckpt[key]))
        self.acc = {k: float(v) for k, v in ckpt["acc"].items()}
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))
        self.saved_at = (self.epoch, self.iteration)

    # --- steps ------------------------------------------------------------------------------
    def _check(self, what: str, value: torch.Tensor) -> float:
        v = float(value.detach())
        if not math.isfinite(v):
            self._stop(f"the {what} became {'NaN' if math.isnan(v) else v}", _ADVICE_NAN)
        return v

    def d_step(self, real: torch.Tensor) -> None:
        self.last.update(self.steps.d_step(real))

    def g_step(self) -> None:
        self.last["loss/g"] = self.steps.g_step(self.batch_size)

    def _guard(self) -> None:
        t = self.cfg.train
        if self.cfg.model.arch == "dcgan":
            bad = (
                self.last["loss/d"] < t.collapse_loss
                and self.last["d/real"] > 0.99
                and self.last["d/fake"] < 0.01
            )
            what = (
                f"the discriminator collapsed: D loss < {t.collapse_loss:g} with "
                f"D(real) > 0.99 and D(fake) < 0.01 for {t.collapse_patience} consecutive "
                "iterations, so the generator gets no gradient"
            )
            advice = _ADVICE_COLLAPSE
        else:
            bad = abs(self.last["wgan/gap"]) > t.max_critic_gap
            what = (
                f"the critic gap |E D(real) - E D(fake)| exceeded {t.max_critic_gap:g} for "
                f"{t.collapse_patience} consecutive iterations (now "
                f"{self.last['wgan/gap']:.4g})"
            )
            advice = _ADVICE_GAP
        self.bad_streak = self.bad_streak + 1 if bad else 0
        if self.bad_streak >= t.collapse_patience:
            self._stop(what, advice)

    def _stop(self, what: str, advice: str) -> None:
        where = f"epoch {self.epoch + 1}, after iteration {self.iteration}"
        if self.saved_at is not None:
            ckpt = (
                f"The last good checkpoint {self.run.last_checkpoint} (epochs done: "
                f"{self.saved_at[0]}, iteration {self.saved_at[1]}) is kept; continue from "
                "it with --resume after changing the config."
            )
        else:
            ckpt = "No checkpoint had been saved yet."
        message = f"{self.label}training stopped at {where}: {what}. {ckpt} Try: {advice}"
        self.run.log_metrics(
            {"iter": self.iteration, "epoch": self.epoch + 1, "event": "stopped", "reason": what}
        )
        self.run.write_results(
            {
                "status": "stopped",
                "reason": what,
                "advice": advice,
                "epoch": self.epoch,
                "iteration": self.iteration,
                "last_good_checkpoint": None
                if self.saved_at is None
                else {
                    "path": str(self.run.last_checkpoint),
                    "epochs": self.saved_at[0],
                    "iteration": self.saved_at[1],
                },
            }
        )
        raise TrainingStopped(message)

    # --- loop -------------------------------------------------------------------------------
    def _accumulate(self) -> None:
        for k in ("loss/d", "loss/g"):
            if k in self.last:
                self.acc[k] = self.acc.get(k, 0.0) + self.last[k]
        self.acc["n"] = self.acc.get("n", 0.0) + 1

    def _log_iteration(self) -> None:
        if self.iteration % self.cfg.train.log_every == 0:
            record = {"iter": self.iteration, "epoch": self.epoch + 1, **self.last}
            self.run.log_metrics(record, step=self.iteration)

    def _end_epoch(self, seconds: float, images: int) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        n = max(self.acc.get("n", 0.0), 1.0)
        record = {
            "iter": self.iteration,
            "epoch": self.epoch,
            "epoch_end": True,
            "epoch/d_loss": self.acc.get("loss/d", 0.0) / n,
            "epoch/g_loss": self.acc.get("loss/g", 0.0) / n,
            "epoch/images_per_s": images / seconds if seconds > 0 else 0.0,
        }
        self.acc = {}
        self.run.log_metrics(record, step=self.iteration)
        sheet = self.sample_sheet()
        if self.run.is_main:
            path = self.run.figures / f"epoch_{self.epoch:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            sheet.save(path)
            tb = self.run.tensorboard()
            tb.add_image("samples", to_tensor(sheet), self.iteration)  # C x H x W in [0, 1]
            tb.flush()
        self.save()

    @torch.no_grad()
    def sample_sheet(self) -> Image.Image:
        """Samples of the fixed noise (eval mode: no RNG or BN-statistics side effects)."""
        was_training = self.G.training
        self.G.eval()
        try:
            images = self.G(self.fixed_z.to(self.device))
        finally:
            self.G.train(was_training)
        return grid_image(images, nrow=8)

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train to ``train.epochs`` (or ``train.max_iters``); returns the results dict."""
        t = self.cfg.train
        if resume:
            self.load()
            self.run.truncate_metrics(self.iteration, key="iter")
        else:
            self.run.truncate_metrics(-1, key="iter")  # leftovers of a run that never saved
            self.run.path.joinpath("train_images.txt").write_text(
                "".join(r.path + "\n" for r in self.records)
            )
        nb = len(self.records) // self.batch_size
        bar = tqdm(
            total=t.epochs * nb,
            initial=min(self.epoch * nb + self.batch_in_epoch, t.epochs * nb),
            desc=f"{self.label}{self.cfg.model.arch}",
            unit="batch",
            disable=not t.progress,
            dynamic_ncols=True,
            leave=False,
        )
        stop = t.max_iters is not None and self.iteration >= t.max_iters
        try:
            while self.epoch < t.epochs and not stop:
                self.sampler.set_epoch(self.epoch, self.batch_in_epoch * self.batch_size)
                t0, images = time.perf_counter(), 0
                for batch in self.loader:
                    self.G.train()
                    self.D.train()
                    self.d_step(batch["image"].to(self.device, non_blocking=True))
                    self.batch_in_epoch += 1
                    self.d_count += 1
                    images += self.batch_size
                    bar.update(1)
                    if self.d_count % self.n_d == 0:
                        for _ in range(t.g_steps):
                            self.g_step()
                        self.iteration += 1
                        self._accumulate()
                        self._guard()
                        self._log_iteration()
                        bar.set_postfix(
                            d=f"{self.last['loss/d']:.3f}",
                            g=f"{self.last['loss/g']:.3f}",
                            refresh=False,
                        )
                        stop = t.max_iters is not None and self.iteration >= t.max_iters
                        if (
                            not stop
                            and t.checkpoint_every
                            and self.iteration % t.checkpoint_every == 0
                        ):
                            self.save()
                    if stop:
                        break
                seconds = time.perf_counter() - t0
                self.train_seconds += seconds
                if self.batch_in_epoch >= nb:
                    self._end_epoch(seconds, images)
            if stop and self.batch_in_epoch:
                self.save()
        finally:
            bar.close()
        results = {
            "status": "done" if self.epoch >= t.epochs else "partial",
            "arch": self.cfg.model.arch,
            "cluster": self.cluster,
            "epochs": self.epoch,
            "iteration": self.iteration,
            "discriminator_steps": self.d_count,
            "train_images": len(self.records),
            "batch_size": self.batch_size,
            "train_seconds": round(self.train_seconds, 3),
            "last": self.last,
            "checkpoint": str(self.run.last_checkpoint),
        }
        self.run.write_results(results)
        return results


def gradient_penalty(D: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2], x_hat = real + u (fake - real), u ~ U[0, 1] per image."""
    u = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x_hat = (real + u * (fake - real)).requires_grad_(True)
    out = D(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


_ADVICE_NAN = (
    "a lower learning rate (e.g. train.lr=1e-4 or half the current one), a smaller batch, "
    "or, for WGAN-GP, check train.gp_weight (10 in the paper)."
)
_ADVICE_COLLAPSE = (
    "a lower discriminator learning rate or more generator steps (train.g_steps=2 or 3), "
    "a lower train.lr, or more training images per GAN (fewer clusters)."
)
_ADVICE_GAP = (
    "a lower learning rate (train.lr=5e-5), a larger train.gp_weight, or betas [0.0, 0.9] as "
    "in the paper."
)


# --- runs -----------------------------------------------------------------------------------
_RESUMABLE_SECTIONS = ("train",)
_RESUMABLE_KEYS = ("data.num_workers",)


def check_resume_config(saved: GanConfig, new: GanConfig) -> list[str]:
    """Keys that differ and make the checkpoint unusable (all but train.*, data.num_workers)."""
    a, b = _flat(to_dict(saved)), _flat(to_dict(new))
    return sorted(
        k
        for k in set(a) | set(b)
        if a.get(k) != b.get(k)
        and k.split(".")[0] not in _RESUMABLE_SECTIONS
        and k not in _RESUMABLE_KEYS
    )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "options":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _prepare_run(run: RunDir, resume: bool, cfg: GanConfig) -> bool:
    """Whether to resume this (sub-)run; refuses to overwrite a run that was not resumed."""
    has_ckpt = run.last_checkpoint.is_file()
    if not resume and has_ckpt:
        raise RunFolderError(
            f"{run.path} already holds a run (checkpoints/last.pt); pass --resume to continue it "
            "or choose a new --out folder."
        )
    return resume and has_ckpt


def train_gan(cfg: GanConfig, out: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train one GAN, or one per cluster when ``data.clusters`` is set; returns results."""
    cfg = resolve(cfg)
    out = Path(out)
    saved_path = out / "config.yaml"
    if resume:
        if not saved_path.is_file():
            raise RunFolderError(
                f"nothing to resume at {out}: no config.yaml there. Drop --resume to start "
                "a new run, or pass the --out folder of an existing run."
            )
        from genreid.engine.sampling import run_config

        differ = check_resume_config(run_config(out), cfg)
        if differ:
            raise RunFolderError(
                f"cannot resume {out} with a different {', '.join(differ)} (the checkpoint was "
                "trained with the run's config.yaml); only train.* and data.num_workers may change "
                "on resume."
            )
    records = training_records(cfg)
    top = RunDir(out)
    if not cfg.data.clusters:
        do_resume = _prepare_run(top, resume, cfg)
        if resume and not do_resume:
            raise RunFolderError(
                f"nothing to resume at {out}: checkpoints/last.pt does not exist (no epoch "
                "finished). Drop --resume to start again."
            )
        top.record_config(cfg, cfg.seed, stage="gan")
        try:
            return GanTrainer(cfg, records, top, cfg.seed).fit(resume=do_resume)
        finally:
            top.close()

    groups = read_cluster_manifest(cfg.data.clusters, cfg, records)
    top.record_config(cfg, cfg.seed, stage="gan_clusters")
    results: dict[str, Any] = {"status": "done", "arch": cfg.model.arch, "clusters": {}}
    try:
        for c, recs in groups.items():
            sub = RunDir(out / f"cluster_{c}")
            do_resume = _prepare_run(sub, resume, cfg)
            seed = cluster_seed(cfg.seed, c)
            sub.record_config(cfg, seed, stage=f"gan_cluster_{c}")
            try:
                trainer = GanTrainer(cfg, recs, sub, seed, cluster=c, label=f"cluster {c}: ")
                res = trainer.fit(resume=do_resume)
            finally:
                sub.close()
            results["clusters"][str(c)] = {
                "images": len(recs),
                "run": sub.path.name,
                "status": res["status"],
                "iteration": res["iteration"],
            }
            if res["status"] != "done":
                results["status"] = "partial"
    except TrainingStopped:
        results["status"] = "stopped"
        top.write_results(results)
        raise
    top.write_results(results)
    return results

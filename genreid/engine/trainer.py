"""Re-ID training loop: mixed real/generated batches, a label strategy, AMP, DDP, exact resume.

One run writes into a :class:`RunDir`: the resolved config and versions, ``metrics.jsonl``
(one record per epoch, with rank-1/mAP/mINP when evaluated), TensorBoard events, an atomic
``checkpoints/last.pt`` after every epoch and ``results.json`` at the end. The RNG is reseeded
from (seed, epoch, rank) at every epoch start and each image's augmentation from its own seed,
so resuming from ``last.pt`` reproduces an uninterrupted run exactly (bitwise on CPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from genreid.data.records import ImageRecord, ReIDDataset
from genreid.data.reid_dataset import ReIDImageDataset
from genreid.data.samplers import MixedBatchSampler
from genreid.data.transforms import AugmentSpec, test_transform, train_transform
from genreid.engine import distributed as ddp
from genreid.engine.checkpoint import atomic_save, load_checkpoint, rng_state, seed_everything
from genreid.engine.extract import evaluate_model
from genreid.engine.optim import LRSchedule, build_optimizer
from genreid.engine.reid_config import ReIDTrainConfig
from genreid.engine.run import RunDir
from genreid.labels.base import (
    LabelBatch,
    LabelOptions,
    LabelStrategy,
    build_strategy,
    soft_cross_entropy,
    strategy_class,
)
from genreid.models.reid import ModelSpec, ReIDModel, build_model


class TrainingError(RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss, or the weights at checkpoint time, became NaN or infinite."""


def model_spec(cfg: ReIDTrainConfig, num_outputs: int) -> ModelSpec:
    """The network of a config with ``num_outputs`` classifier outputs."""
    m = cfg.model
    return ModelSpec(m.arch, m.backbone, m.width, m.dropout, m.bottleneck_dim, num_outputs)


def label_options(cfg: ReIDTrainConfig) -> LabelOptions:
    """Strategy options from the ``labels.*`` keys."""
    lab = cfg.labels
    return LabelOptions(
        lab.gen_start_epoch,
        lab.gen_weight,
        lab.real_smoothing,
        lab.epsilon,
        lab.center_lambda,
        lab.center_alpha,
        lab.temperature,
        lab.smprl_targets,
        lab.clusters,
    )


def load_training_data(
    cfg: ReIDTrainConfig, uses_generated: bool
) -> tuple[ReIDDataset, list[ImageRecord], dict[int, int]]:
    """The dataset, the training records (real first, then generated) and the label map."""
    from genreid.data.datasets import load_dataset

    if not cfg.data.root:
        raise TrainingError("data.root is not set; give the dataset folder, e.g. data.root=PATH")
    ds = load_dataset(cfg.data.dataset, cfg.data.root, **cfg.data.options)
    label_map = ds.train_label_map()
    if not label_map:
        raise TrainingError(f"{cfg.data.dataset} at {cfg.data.root} has no training identities")
    real = [r for r in ds.train if not r.generated and r.pid in label_map]
    gen: list[ImageRecord] = []
    if uses_generated:
        if not cfg.data.generated:
            raise TrainingError(
                f"labels.strategy={cfg.labels.strategy} trains with generated images; set "
                "data.generated to a folder with manifest.csv (or use strategy baseline)"
            )
        from genreid.data.generated import read_generated

        gen = read_generated(cfg.data.generated)
        if cfg.data.max_generated is not None:
            gen = gen[: cfg.data.max_generated]
    return ds, real + gen, label_map


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 (or fp16) on CUDA; None (no autocast) on CPU or when off."""
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)


def aux_loss_scale(world_size: int) -> float:
    """Factor on the auxiliary loss so DDP's gradient averaging keeps its batch-sum scale."""
    # FAPL's L_C is a sum over the batch (METHODS §3), computed per rank on the local batch.
    # DDP averages gradients over the W ranks, which would turn the global-batch sum into
    # sum / W (an effective lambda / W); multiplying by W restores lambda. The soft
    # cross-entropy is a mean, so DDP's average of it is already the global-batch mean.
    return float(max(world_size, 1))


def non_finite_tensors(state: dict[str, Any], prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) state dict with a NaN or inf."""
    bad = []
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            bad += non_finite_tensors(value, name + ".")
        elif torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            bad.append(name)
    return bad


class Trainer:
    """Builds everything from a config and runs (or resumes) training into ``out``."""

    def __init__(self, cfg: ReIDTrainConfig, out: str | Path, resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume

    # ------------------------------------------------------------------ set-up
    def _setup(self) -> None:
        cfg = self.cfg
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.dist = ddp.init_distributed(cfg.train.device)
        self.device = self.dist.device
        ckpt_path = self.out / "checkpoints" / "last.pt"
        if self.resume and not ckpt_path.is_file():
            raise TrainingError(f"--resume: {ckpt_path} does not exist; start without --resume")
        if not self.resume and ckpt_path.is_file():
            raise TrainingError(
                f"{self.out} already holds a run ({ckpt_path}); pass --resume to "
                "continue it or choose another --out"
            )
        cls = strategy_class(cfg.labels.strategy)
        self.ds, self.records, self.label_map = load_training_data(cfg, cls.uses_generated)
        self.run = RunDir(self.out, is_main=self.dist.is_main)
        K = len(self.label_map)
        seed_everything(cfg.seed)
        num_outputs = K + 1 if cls.extra_class else K
        self.model: ReIDModel = build_model(model_spec(cfg, num_outputs), cfg.model.pretrained)
        self.model.to(self.device)
        opts = label_options(cfg)
        if cfg.labels.strategy == "smprl" and cfg.labels.smprl_from and not opts.smprl_targets:
            opts = replace(opts, smprl_targets=str(self._smprl_targets(cfg.labels.smprl_from)))
        self.strategy: LabelStrategy = build_strategy(
            cfg.labels.strategy, K, opts, feat_dim=self.model.feat_dim, epochs=cfg.train.epochs
        )
        self.strategy.prepare(self.records, self.label_map, self.ds.root)
        self.strategy.to(self.device)
        self.size = (cfg.data.height, cfg.data.width)
        d = cfg.data
        spec = AugmentSpec(
            self.size,
            tuple(d.resize),
            d.pad,
            d.flip,
            d.erasing_p,
            tuple(d.erasing_area),
            d.erasing_min_aspect,
        )
        self.train_set = ReIDImageDataset(self.records, train_transform(spec), self.label_map)
        self.sampler = MixedBatchSampler(
            self.train_set.labels,
            [r.generated for r in self.records],
            cfg.train.batch_size,
            seed=cfg.seed,
            mode=d.sampler,
            gen_share=d.gen_batch_share,
            num_instances=d.pk_instances,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.loader = DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            num_workers=d.workers,
            pin_memory=self.device.type == "cuda",
        )
        self.sampler.set_epoch(0, self.strategy.generated_active(0))
        if self.epoch_iters() == 0:
            raise TrainingError("no training batch: fewer images than processes")
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.schedule = LRSchedule(self.optimizer, cfg.optim, cfg.train.epochs)
        self.amp = amp_dtype(cfg.train.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.start_epoch = 0
        if self.resume:
            self._load(ckpt_path)
        else:
            self.run.record_config(cfg, cfg.seed, "train")
        self.net: torch.nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    def epoch_iters(self) -> int:
        """Iterations of the sampler's current epoch (capped by ``train.max_iters``)."""
        n = len(self.sampler)
        return min(n, self.cfg.train.max_iters) if self.cfg.train.max_iters else n

    def _smprl_targets(self, run_dir: str) -> Path:
        """Fixed sMpRL targets from a trained baseline run, computed once into this run."""
        target = self.out / "smprl_targets.npz"
        if self.dist.is_main and not target.is_file():
            from genreid.config import load_config
            from genreid.labels.mprl import compute_smprl_targets, write_smprl_targets

            src = Path(run_dir)
            base_cfg = load_config(ReIDTrainConfig, src / "config.yaml")
            ckpt = load_checkpoint(src / "checkpoints" / "last.pt")
            base = build_model(model_spec(base_cfg, int(ckpt["num_outputs"])))
            base.load_state_dict(ckpt["model"])
            base.to(self.device)
            gen = [r for r in self.records if r.generated]
            size = (base_cfg.data.height, base_cfg.data.width)
            loader = DataLoader(ReIDImageDataset(gen, test_transform(size)), batch_size=128)
            q = compute_smprl_targets(base, loader, self.device)
            write_smprl_targets(target, [r.path for r in gen], q)
        ddp.barrier()
        return target

    # ------------------------------------------------------------- checkpoints
    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "labels": self.strategy.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "epoch": epoch,
            "num_classes": self.strategy.num_classes,
            "num_outputs": self.strategy.num_outputs,
            "strategy": self.cfg.labels.strategy,
        }

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        if int(ckpt["num_outputs"]) != self.strategy.num_outputs:
            raise TrainingError(
                f"{path} has {ckpt['num_outputs']} classes, this config "
                f"{self.strategy.num_outputs}: resume with the run's config"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["scheduler"])
        self.strategy.load_state_dict(ckpt["labels"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = int(ckpt["epoch"])
        self.run.truncate_metrics(self.start_epoch)

    def _save(self, epoch: int) -> None:
        # every rank holds the same weights, BN buffers and centers here, so all ranks stop
        bad = non_finite_tensors({"model": self.model.state_dict()})
        bad += non_finite_tensors({"labels": self.strategy.state_dict()})
        if bad:
            ckpt = self.run.last_checkpoint
            kept = (
                f"the last good checkpoint {ckpt} (after epoch {self.start_epoch_done}) is kept"
                if ckpt.is_file()
                else "no checkpoint had been written yet"
            )
            raise NonFiniteLossError(
                f"after epoch {epoch} {len(bad)} weight/buffer tensor(s) are NaN or inf (e.g. "
                f"{', '.join(bad[:3])}), so no checkpoint was written; {kept}. Try a lower "
                "optim.lr (e.g. half), train.amp=off, or check the generated images "
                "(`genreid data check`, or train without data.generated)."
            )
        if not self.dist.is_main:
            return
        state = self._state(epoch)
        atomic_save(state, self.run.last_checkpoint)
        if self.cfg.train.keep_checkpoints:
            atomic_save(state, self.run.checkpoints / f"epoch_{epoch:03d}.pt")

    # ------------------------------------------------------------------- loop
    def _autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp)

    def _step(self, batch: tuple, epoch: int, it: int, n_iters: int) -> float:
        x, labels, _cam, generated, clusters, index = batch
        dev = self.device
        x = x.to(dev, non_blocking=True)
        labels, generated = labels.to(dev), generated.to(dev)
        with self._autocast():
            logits, feats = self.net(x)
        lb = LabelBatch(
            logits.float(), feats.float(), labels, generated, clusters.to(dev), epoch, index.to(dev)
        )
        tg = self.strategy(lb)
        loss = soft_cross_entropy(lb.logits, tg.q, tg.weight)
        if tg.aux_loss is not None:
            loss = loss + aux_loss_scale(self.dist.world_size) * tg.aux_loss
        value = loss.item()
        if ddp.any_rank(not math.isfinite(value), dev):
            self._diverged(epoch, it, value)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step(epoch + (it + 1) / n_iters)
        self.strategy.after_step(lb)
        return value

    def _diverged(self, epoch: int, it: int, value: float) -> None:
        ckpt = self.run.last_checkpoint
        kept = (
            f"the last good checkpoint {ckpt} (after epoch {self.start_epoch_done}) is kept"
            if ckpt.is_file()
            else "no checkpoint had been written yet"
        )
        lr = ", ".join(f"{v:.3g}" for v in self.schedule.lr())
        raise NonFiniteLossError(
            f"the training loss became {value} at epoch {epoch + 1}, iteration {it + 1} "
            f"(lr {lr}); {kept}. Try a lower optim.lr (e.g. half), check the generated images "
            "(`genreid data check`, or train without data.generated), or train.amp=off."
        )

    def _evaluate(self) -> dict[str, float]:
        if not self.ds.query or not self.ds.gallery:
            return {}
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            e = self.cfg.eval
            metrics, _, _ = evaluate_model(
                self.model, self.ds, self.size, e.metric, e.flip, e.batch_size, self.device
            )
        ddp.barrier()
        return metrics

    def run_training(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train from the start (or the checkpoint) to ``train.epochs``; returns the results.

        ``stop_after`` ends this call after that many epochs have completed (to test resume).
        """
        try:
            self._setup()
            return self._loop(stop_after)
        finally:
            if hasattr(self, "run"):
                self.run.close()
            if hasattr(self, "dist") and self.dist.enabled:
                ddp.cleanup()

    def _loop(self, stop_after: int | None) -> dict[str, Any]:
        cfg = self.cfg
        E = cfg.train.epochs
        self.start_epoch_done = self.start_epoch
        last_eval: dict[str, float] = {}
        t_run = time.time()
        end = E if stop_after is None else min(E, stop_after)
        self.model.train()
        for epoch in range(self.start_epoch, end):
            seed_everything(epoch_seed(cfg.seed, epoch, self.dist.rank))
            self.sampler.set_epoch(epoch, self.strategy.generated_active(epoch))
            t0 = time.time()
            total, n_img, iters = 0.0, 0, 0
            n_iters = self.epoch_iters()
            bar = tqdm(
                self.loader,
                total=n_iters,
                desc=f"epoch {epoch + 1}/{E}",
                dynamic_ncols=True,
                leave=False,
                disable=not (cfg.train.progress and self.dist.is_main),
            )
            for it, batch in enumerate(bar):
                if it >= n_iters:
                    break
                value = self._step(batch, epoch, it, n_iters)
                total += value
                n_img += batch[0].shape[0]
                iters += 1
                bar.set_postfix(loss=f"{value:.3f}")
            bar.close()
            ddp.broadcast_buffers(self.model)
            secs = time.time() - t0
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": total / max(iters, 1),
                "lr": self.schedule.lr()[0],
                "lr_head": self.schedule.lr()[-1],
                "iterations": iters,
                "images": n_img * self.dist.world_size,
                "seconds": secs,
                "images_per_s": n_img * self.dist.world_size / max(secs, 1e-9),
                "generated_used": self.strategy.generated_active(epoch),
            }
            every = cfg.train.eval_every
            if (every and (epoch + 1) % every == 0) or epoch + 1 == E:
                last_eval = self._evaluate()
                record.update(last_eval)
                last_eval = {**last_eval, "epoch": epoch + 1}
            self.run.log_metrics(record, step=epoch + 1)
            self._save(epoch + 1)
            self.start_epoch_done = epoch + 1
            ddp.barrier()
        results = {
            "epochs_completed": self.start_epoch_done,
            "epochs": E,
            "strategy": cfg.labels.strategy,
            "num_classes": self.strategy.num_classes,
            "train_images": sum(not r.generated for r in self.records),
            "generated_images": sum(r.generated for r in self.records),
            "seconds_this_call": time.time() - t_run,
            "world_size": self.dist.world_size,
        }
        if last_eval:
            results["final"] = last_eval
        done = self.run.path / "results.json"
        if self.start_epoch >= E and done.is_file():  # resuming a finished run: keep its results
            return json.loads(done.read_text())
        if self.dist.is_main and self.start_epoch_done == E:
            self.run.write_results(results)
        return results


def train(
    cfg: ReIDTrainConfig, out: str | Path, resume: bool = False, stop_after: int | None = None
) -> dict[str, Any]:
    """Run (or resume) one training run into ``out``; returns the results dict."""
    return Trainer(cfg, out, resume).run_training(stop_after)

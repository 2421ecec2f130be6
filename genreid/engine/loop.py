"""The one training loop; a :class:`Task` plugs in what it trains.

The loop owns everything that is not the task: the run folder (and the refusal to overwrite
one without ``--resume``), the threads and the device, DDP, the named modules, optimizers,
schedulers and AMP scalers the task registers, RNG seeding and state, the finiteness guards
(a NaN loss or weight stops the run and keeps the last good checkpoint), atomic checkpoints
of every registered object, ``metrics.jsonl`` and TensorBoard, progress with ETA, the time
spent waiting for data, the periodic evaluation and ``results.json``.

A task builds its data and modules in :meth:`Task.setup` and trains one batch in
:meth:`Task.step`, returning a dict of scalars. Adding a task never touches this file
(docs/ARCHITECTURE.md).

Resume is exact: a checkpoint holds the loop's position (epoch, batch within it, global
step), the running epoch sums and the RNG state; tasks that reseed every epoch (re-ID) get the
same seed for an epoch whatever happened before, and samplers skip the batches already
trained on without reading them.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from genreid.core import distributed as ddp
from genreid.core.checkpoint import (
    atomic_save,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from genreid.core.config import load_config, save_config, to_dict
from genreid.core.cpu import JobRegistry, oversubscription, steady_allocator
from genreid.core.errors import ConfigError, GenreidError, NonFiniteFeaturesError, RunFolderError
from genreid.core.faults import crash_point
from genreid.core.files import write_json_atomic
from genreid.core.progress import Progress
from genreid.core.runs import RunDir, read_results
from genreid.engine.fastpath import (
    autocast,
    resolve_channels_last,
    resolve_compile,
    resolve_precision,
)

CHECKPOINT_FORMAT = 2


@dataclass
class LoopConfig:
    """The ``train`` keys every task shares."""

    epochs: int = 50
    device: str = "auto"  # auto, cpu, cuda, cuda:1
    threads: int | None = None  # torch CPU threads (null: torch's default, all cores)
    # autocast: auto (CUDA: bf16 or fp16; CPU: the task's measured choice, engine/fastpath.py),
    # fp32 (none: the reference path, bitwise as before), bf16, fp16 (CUDA only)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool | Literal["auto"] = "auto"  # torch.compile the task's modules
    # channels_last memory format for modules and image batches (auto: with bf16 on a CPU,
    # where the task measured it faster)
    channels_last: bool | Literal["auto"] = "auto"
    # the name of `precision` before 2026-12-07 (off = fp32), read from older run folders
    amp: Literal["auto", "bf16", "fp16", "off"] | None = None
    progress: bool = True  # bar with ETA on a terminal, a plain line every 10 s in a log
    eval_every: int = 0  # epochs between evaluations; 0 = only at the end
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0 = at epoch ends only
    keep_checkpoints: bool = False  # also keep checkpoints/epoch_NNN.pt

    def check(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs: expected 1 or more, got {self.epochs}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"train.threads: expected 1 or more (or null), got {self.threads}")
        for key in ("eval_every", "checkpoint_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key}: expected 0 or more, got {getattr(self, key)}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ConfigError(
                f"train.device: expected auto, cpu, cuda or cuda:N, got {self.device}"
            )
        if self.amp is not None and self.precision != "auto":
            raise ConfigError(
                "train.amp is the old name of train.precision; set only train.precision "
                f"(got amp={self.amp}, precision={self.precision})"
            )
        if self.precision_mode == "fp16" and self.device == "cpu":
            raise ConfigError("train.precision: fp16 autocast is for CUDA; on a CPU use bf16")

    @property
    def precision_mode(self) -> str:
        """``precision``, or the old ``amp`` key's value in its terms."""
        if self.amp is None:
            return self.precision
        return "fp32" if self.amp == "off" else self.amp


class TrainingError(GenreidError, RuntimeError):
    """A run that cannot start or continue; the message says why and what to do."""


class TrainingStopped(TrainingError):
    """Training stopped on purpose (a diverged loss, a collapsed GAN); the last good checkpoint
    is kept. ``what`` says what happened, ``advice`` what to try."""

    def __init__(self, what: str, advice: str = "", message: str | None = None) -> None:
        self.what, self.advice = what, advice
        super().__init__(message or what)


class NonFiniteError(TrainingStopped):
    """A loss, or the weights at checkpoint time, became NaN or infinite."""


@dataclass(frozen=True)
class StepInfo:
    """Where a step is: epoch (0-based), batch index within it, the epoch's length, and the
    global step count before this step."""

    epoch: int
    index: int
    length: int
    step: int


class Task:
    """One kind of training. Subclasses set ``name`` and ``config_class`` and implement the
    methods below; ``genreid train`` picks the task from the config's ``task`` key."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    # True: every epoch starts from a seed fixed by (seed, epoch, rank). False: seeded once,
    # the RNG carried on across epochs (and saved in every checkpoint either way).
    reseed_each_epoch: ClassVar[bool] = True
    # Config keys (prefixes) that may differ when a run is resumed.
    resumable_keys: ClassVar[tuple[str, ...]] = ("train.", "eval.", "data.workers")
    # What to try when a loss or the weights become NaN.
    nan_advice: ClassVar[str] = "a lower learning rate."
    stage: ClassVar[str] = ""  # env.json's "stage" (default: the task name)
    # What `genreid pretrain` writes from a run of this task: backbone.pt or generator.pt.
    pretrain_product: ClassVar[str] = "backbone"
    # The field of `genreid reproduce`'s plan Context whose overrides its table runs take.
    reproduce_overrides: ClassVar[str] = "reid_overrides"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.seed: int = int(cfg.seed)
        self.label = ""  # prefix of messages ("cluster 3: ")

    @property
    def loop_config(self) -> LoopConfig:
        return self.cfg.train

    @classmethod
    def train(
        cls, cfg: Any, out: str | Path, resume: bool | Literal["auto"] = False
    ) -> dict[str, Any]:
        """Run (or resume) a whole run of this task into ``out``; returns its results."""
        return Loop(cls(cfg), out, resume).run()

    @classmethod
    def finished_epochs(cls, cfg: Any) -> int | None:
        """The epochs a finished run must have completed to count as done (None: any finished
        run does), so that a run whose ``train.epochs`` was raised since goes on."""
        return None

    @classmethod
    def trained_images(cls, cfg: Any, real_images: Callable[[dict[str, Any]], int]) -> int:
        """Images a run passes through its networks, given the labeled training images of
        data options (``real_images``): what a GPU-hours estimate scales (0: not estimated)."""
        return 0

    def cpu_auto_bf16(self) -> bool:
        """Whether ``train.precision: auto`` may pick bf16 on a CPU for this run (False where
        bf16 was not measured as accurate for it, or its inputs would meet a known defect of
        torch's bf16 kernels)."""
        return True

    def setup(self, loop: Loop) -> None:
        """Build data and modules and register them with the loop (``loop.module`` ...)."""
        raise NotImplementedError

    def epoch_length(self, epoch: int) -> int:
        """Steps (batches) in epoch ``epoch``."""
        raise NotImplementedError

    def batches(self, epoch: int, start: int) -> Iterable[Any]:
        """The batches of ``epoch`` from batch ``start`` on (earlier ones are not read)."""
        raise NotImplementedError

    def batch_images(self, batch: Any) -> int:
        """Images in a batch (on this process)."""
        return int(batch["image"].shape[0])

    def step(self, batch: Any, at: StepInfo) -> dict[str, float]:
        """Train on one batch; returns the scalars to log (means are kept per epoch)."""
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """After an epoch (before evaluation and the checkpoint): extra values to log."""
        return {}

    def evaluate(self) -> dict[str, float]:
        """The periodic evaluation (every ``train.eval_every`` epochs and at the end)."""
        return {}

    def finished(self) -> bool:
        """True to stop before ``train.epochs`` (e.g. an iteration cap)."""
        return False

    def after_load(self) -> None:
        """After a checkpoint was loaded on resume (e.g. apply a changed learning rate)."""

    def state_dict(self) -> dict[str, Any]:
        """Task state beyond the registered objects (counters, RNG generators)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def meta(self) -> dict[str, Any]:
        """What a reader of the checkpoint needs to rebuild the networks (``num_outputs``)."""
        return {}

    def check_checkpoint(self, meta: dict[str, Any], path: Path) -> None:
        """Refuse a checkpoint whose ``meta`` does not fit this task's networks."""

    def results(self) -> dict[str, Any]:
        """Task-specific entries of results.json."""
        return {}


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed every epoch of a reseeding task starts from."""
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63)


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


def config_differences(
    saved: dict[str, Any], new: dict[str, Any], allowed: tuple[str, ...]
) -> list[str]:
    """Dotted keys whose values differ between two config dicts, outside the ``allowed``
    prefixes (``train.``) and keys (``data.workers``)."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict) and k != "options":
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[prefix + k] = v
        return out

    a, b = flat(saved), flat(new)
    return sorted(
        k
        for k in set(a) | set(b)
        if a.get(k) != b.get(k)
        and not any(k == p or (p.endswith(".") and k.startswith(p)) for p in allowed)
    )


class _EpochStats:
    """Running sums of one epoch (saved in checkpoints, so a resumed epoch logs the same)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.images = 0
        self.steps = 0
        self.data_seconds = 0.0
        self.compute_seconds = 0.0

    def add(self, values: dict[str, float], images: int, data_s: float, compute_s: float) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
            self.counts[k] = self.counts.get(k, 0) + 1
        self.images += images
        self.steps += 1
        self.data_seconds += data_s
        self.compute_seconds += compute_s

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / max(self.counts[k], 1) for k in self.sums}

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class Loop:
    """Runs (or resumes) one task into the run folder ``out``.

    ``resume``: True (continue ``out``; it must hold a checkpoint), False (a new run; a folder
    holding a checkpoint is refused) or ``"auto"`` (continue when there is a checkpoint).
    ``stop_after``: end this call after that many epochs have completed (tests of resume).
    """

    def __init__(
        self,
        task: Task,
        out: str | Path,
        resume: bool | Literal["auto"] = False,
        stop_after: int | None = None,
    ) -> None:
        self.task = task
        self.cfg: LoopConfig = task.loop_config
        self.out = Path(out)
        self.resume = resume
        self.stop_after = stop_after
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch done
        self.step = 0  # steps done in all
        self.train_seconds = 0.0
        self.saved_at: tuple[int, int, int] | None = None  # (epoch, batch, step) of last.pt
        self.stats = _EpochStats()
        self.last_eval: dict[str, Any] = {}
        self.progress: Progress | None = None
        self.rundir: RunDir | None = None
        self.dist: ddp.DistInfo | None = None
        self.jobs = JobRegistry()
        self.amp: torch.dtype | None = None  # the fast path (_resolve_fast_path)
        self.compile = self.channels_last = False
        self.resuming = False
        self.seconds_this_call = 0.0
        self._position = StepInfo(0, 0, 0, 0)

    # ------------------------------------------------------------------ for tasks
    def module(self, name: str, module: nn.Module, ddp_wrap: bool = True) -> nn.Module:
        """Register a module (moved to the device; saved in checkpoints). Returns what the
        task should call for training forwards: the module, or its DDP wrapper when run by
        torchrun and it has trainable parameters."""
        module.to(self.device)
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        self.modules[name] = module
        if self.compile:
            module.compile()  # in place: state_dict keys and checkpoints stay the same
        trainable = any(p.requires_grad for p in module.parameters())
        if ddp_wrap and self.dist.enabled and trainable:
            ids = [self.device.index] if self.device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(module, device_ids=ids)
        return module

    def optimizer(self, name: str, opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
        self.optimizers[name] = opt
        return opt

    def scheduler(self, name: str, sched: Any) -> Any:
        """Register anything with ``state_dict``/``load_state_dict`` that schedules lr."""
        self.schedulers[name] = sched
        return sched

    def scaler(self, name: str = "scaler") -> torch.amp.GradScaler:
        """A registered AMP gradient scaler, enabled only for fp16 autocast."""
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)
        self.scalers[name] = scaler
        return scaler

    def images(self, batch: torch.Tensor) -> torch.Tensor:
        """An image batch on the device, in the memory format the modules use."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        return batch.to(self.device, non_blocking=True, memory_format=fmt)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for training forwards (a no-op at ``train.precision`` fp32)."""
        return autocast(self.device, self.amp)

    def finite(self, what: str, loss: torch.Tensor) -> float:
        """The loss as a float; stops the run (on every rank) if it is NaN or infinite. Call it
        before ``backward`` so that no NaN ever reaches the weights."""
        value = float(loss.detach())
        if ddp.any_rank(not math.isfinite(value), self.device):
            shown = "NaN" if math.isnan(value) else str(value)
            raise NonFiniteError(f"the {what} became {shown}", self.task.nan_advice)
        return value

    def log(self, record: dict[str, Any]) -> None:
        """Append a record (with the current step and epoch) to metrics.jsonl and TensorBoard."""
        record = {"step": self.step, "epoch": self._position.epoch + 1, **record}
        self.rundir.log_metrics(record, step=self.step)

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """Train to ``train.epochs`` (or until the task is finished); returns the results."""
        try:
            self._start()
            if self.resuming and self._complete():
                previous = read_results(self.out)
                if previous and previous.get("status") == "done":
                    return previous  # resuming a finished run changes nothing
            else:
                self._train()
            return self._final_results()
        except TrainingStopped as exc:
            raise self._stopped(exc) from None
        finally:
            if self.progress is not None:
                self.progress.close()
            if self.rundir is not None:
                self.rundir.close()
            if self.dist is not None and self.dist.enabled:
                ddp.cleanup()
            self.jobs.leave()

    def _start(self) -> None:
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        steady_allocator()
        warning = oversubscription(torch.get_num_threads(), self.jobs.others())
        self.jobs.enter(torch.get_num_threads(), str(self.out))
        self.dist = ddp.init_distributed(cfg.device)
        self.device = self.dist.device
        self._resolve_fast_path()
        ckpt_path = self.out / "checkpoints" / "last.pt"
        has_ckpt = ckpt_path.is_file()
        if self.resume is True and not has_ckpt:
            raise RunFolderError(
                f"nothing to resume at {self.out}: checkpoints/last.pt does not exist (no epoch "
                "finished). Drop --resume to start again."
            )
        if self.resume is False and has_ckpt:
            raise RunFolderError(
                f"{self.out} already holds a run (checkpoints/last.pt); pass --resume to "
                "continue it or choose another --out"
            )
        self.resuming = has_ckpt and self.resume is not False
        if self.resuming:
            self._check_config()
        self.rundir = RunDir(self.out, is_main=self.dist.is_main)
        seed_everything(self.task.seed)
        self.task.setup(self)
        if self.resuming:
            self._load(ckpt_path)
        else:
            self.rundir.truncate_metrics(-1)  # leftovers of a run that never saved
            stage = self.task.stage or self.task.name
            self.rundir.record_config(self.task.cfg, self.task.seed, stage)
            if not self.task.reseed_each_epoch and self.dist.rank > 0:
                seed_everything(epoch_seed(self.task.seed, -1, self.dist.rank))  # own noise
        if self.resuming and self.dist.is_main:
            self._note_resume()
        if warning and self.dist.is_main:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
            self.rundir.log_metrics(
                {"step": self.step, "event": "shared_cores", "warning": warning}
            )

    def _check_config(self) -> None:
        saved_path = self.out / "config.yaml"
        if not saved_path.is_file():
            return
        saved = load_config(type(self.task.cfg), saved_path)
        differ = config_differences(
            to_dict(saved), to_dict(self.task.cfg), self.task.resumable_keys
        )
        if differ:
            raise RunFolderError(
                f"cannot resume {self.out} with a different {', '.join(differ)} (the checkpoint "
                "was trained with the run's config.yaml); only "
                f"{', '.join(self.task.resumable_keys)} may change on resume."
            )

    def _note_resume(self) -> None:
        """config.yaml is what runs now; env.json lists every resume."""
        save_config(self.task.cfg, self.out / "config.yaml")
        env_path = self.out / "env.json"
        env = json.loads(env_path.read_text()) if env_path.is_file() else {}
        env.setdefault("resumed", []).append(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": sys.argv,
                "from_step": self.step,
            }
        )
        write_json_atomic(env, env_path)

    def _complete(self) -> bool:
        return self.epoch >= self.cfg.epochs or self.task.finished()

    def _epoch_lengths(self) -> list[int]:
        return [self.task.epoch_length(e) for e in range(self.cfg.epochs)]

    def _train(self) -> None:
        cfg, task = self.cfg, self.task
        lengths = self._epoch_lengths()
        if lengths and lengths[0] == 0:
            raise TrainingError(
                f"{task.label}no training batch: fewer training images than one batch per "
                "process; lower train.batch_size or add images"
            )
        done_before = sum(lengths[: self.epoch]) + self.batch_in_epoch
        self.progress = Progress(
            sum(lengths), desc="", unit="step", initial=done_before,
            enabled=cfg.progress and self.is_main,
        )  # fmt: skip
        t_call = time.perf_counter()
        stop = task.finished()
        while self.epoch < cfg.epochs and not stop:
            epoch, n = self.epoch, lengths[self.epoch]
            self.progress.set_description(f"{task.label}epoch {epoch + 1}/{cfg.epochs}")
            if self.batch_in_epoch == 0:
                self.stats = _EpochStats()
                if task.reseed_each_epoch:
                    seed_everything(epoch_seed(task.seed, epoch, self.dist.rank))
            batches = iter(task.batches(epoch, self.batch_in_epoch))
            stop = self._run_epoch(batches, epoch, n)
            if self.batch_in_epoch >= n:
                self._end_epoch(epoch)
                if self.stop_after is not None and self.epoch >= self.stop_after:
                    break
        if stop and self.batch_in_epoch:
            self.save()
        self.seconds_this_call = time.perf_counter() - t_call

    def _run_epoch(self, batches: Iterator[Any], epoch: int, n: int) -> bool:
        """Steps until the epoch ends; True when the task says it is finished."""
        task, cfg = self.task, self.cfg
        while self.batch_in_epoch < n:
            t0 = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                raise TrainingError(
                    f"{task.label}the data ran out after {self.batch_in_epoch} of {n} batches "
                    f"in epoch {epoch + 1}"
                ) from None
            t1 = time.perf_counter()
            self._position = StepInfo(epoch, self.batch_in_epoch, n, self.step)
            values = task.step(batch, self._position)
            t2 = time.perf_counter()
            images = task.batch_images(batch) * self.dist.world_size
            self.stats.add(values, images, t1 - t0, t2 - t1)
            self.train_seconds += t2 - t0
            self.batch_in_epoch += 1
            self.step += 1
            shown = dict(values)
            busy = self.stats.data_seconds + self.stats.compute_seconds
            shown["img/s"] = self.stats.images / max(busy, 1e-9)
            shown["data"] = f"{100 * self.stats.data_seconds / max(busy, 1e-9):.0f}%"
            self.progress.update(1, **shown)
            if task.finished():
                return True
            every = cfg.checkpoint_every
            if every and self.step % every == 0 and self.batch_in_epoch < n:
                self.save()
        return False

    def _end_epoch(self, epoch: int) -> None:
        cfg, task = self.cfg, self.task
        for module in self.modules.values():
            ddp.broadcast_buffers(module)
        s = self.stats
        busy = s.data_seconds + s.compute_seconds
        record: dict[str, Any] = {
            **s.means(),
            "steps": s.steps,
            "images": s.images,
            "seconds": busy,
            "data_seconds": s.data_seconds,
            "compute_seconds": s.compute_seconds,
            "data_share": s.data_seconds / busy if busy > 0 else 0.0,
            "images_per_s": s.images / busy if busy > 0 else 0.0,
        }
        record.update(task.end_epoch(epoch))
        every = cfg.eval_every
        if (every and (epoch + 1) % every == 0) or epoch + 1 == cfg.epochs:
            try:
                evaluation = task.evaluate()
            except NonFiniteFeaturesError as exc:  # stop like a NaN loss: the last good
                raise NonFiniteError(  # checkpoint stays, results.json says what happened
                    f"evaluation after epoch {epoch + 1}: {exc}", self.task.nan_advice
                ) from None
            crash_point("evaluation")
            if evaluation:
                record.update(evaluation)
                self.last_eval = {**evaluation, "epoch": epoch + 1}
        self._position = StepInfo(epoch, s.steps, s.steps, self.step)
        self.epoch, self.batch_in_epoch = epoch + 1, 0
        self.log({**record, "epoch_end": True})
        self._epoch_line(record)
        self.save(keep_as=f"epoch_{self.epoch:03d}.pt" if cfg.keep_checkpoints else None)
        ddp.barrier()

    def _epoch_line(self, record: dict[str, Any]) -> None:
        """One summary line per epoch (loss, accuracy, speed, data share) on the console."""
        keys = [k for k in ("loss", "loss/d", "loss/g", "rank1", "mAP") if k in record]
        parts = [f"{k} {record[k]:.4g}" for k in keys]
        parts.append(f"{record['images_per_s']:.1f} img/s")
        parts.append(f"data {100 * record['data_share']:.0f}%")
        line = f"{self.task.label}epoch {self.epoch}/{self.cfg.epochs}: " + ", ".join(parts)
        self.progress.write(line)

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "task": self.task.name,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "task_state": self.task.state_dict(),
            "rng": rng_state(),
            "loop": {
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "step": self.step,
                "train_seconds": self.train_seconds,
                "epoch_stats": self.stats.state_dict(),
                "last_eval": dict(self.last_eval),
            },
            "meta": self.task.meta(),
        }

    def save(self, keep_as: str | None = None) -> None:
        """Write checkpoints/last.pt atomically, never with NaN or infinite weights."""
        modules = {k: m.state_dict() for k, m in self.modules.items()}
        bad = non_finite_tensors(modules)
        if bad:
            raise NonFiniteError(
                f"{len(bad)} weight/buffer tensor(s) became NaN or inf (e.g. "
                f"{', '.join(bad[:3])}), so no checkpoint was written",
                self.task.nan_advice,
            )
        if self.is_main:
            state = self._state()
            atomic_save(state, self.rundir.last_checkpoint)
            if keep_as:
                atomic_save(state, self.rundir.checkpoints / keep_as)
        self.saved_at = (self.epoch, self.batch_in_epoch, self.step)

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")  # RNG states must stay on the CPU
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("task") != self.task.name:
            raise RunFolderError(
                f"{path} is not a checkpoint of a genreid {self.task.name!r} run of this version "
                f"(format {ckpt.get('format')}, task {ckpt.get('task')!r}); start a new run"
            )
        self.task.check_checkpoint(ckpt.get("meta", {}), path)
        for kind, objects in (
            ("modules", self.modules),
            ("optimizers", self.optimizers),
            ("schedulers", self.schedulers),
            ("scalers", self.scalers),
        ):
            saved = ckpt.get(kind, {})
            missing = sorted(set(objects) - set(saved))
            if missing:
                raise RunFolderError(
                    f"{path} holds no {kind} {', '.join(missing)}; start a new run"
                )
            for name, obj in objects.items():
                if saved[name]:
                    obj.load_state_dict(saved[name])
        self.task.load_state_dict(ckpt.get("task_state", {}))
        set_rng_state(ckpt["rng"])
        pos = ckpt["loop"]
        self.epoch, self.batch_in_epoch = int(pos["epoch"]), int(pos["batch_in_epoch"])
        self.step = int(pos["step"])
        self.train_seconds = float(pos.get("train_seconds", 0.0))
        self.stats.load_state_dict(pos.get("epoch_stats", {}))
        self.last_eval = dict(pos.get("last_eval", {}))
        self.saved_at = (self.epoch, self.batch_in_epoch, self.step)
        self.rundir.truncate_metrics(self.step)
        self.task.after_load()

    # ------------------------------------------------------------------ endings
    def _kept(self) -> str:
        if self.saved_at is None:
            return "No checkpoint had been saved yet."
        epoch, batch, step = self.saved_at
        where = f"after epoch {epoch}" if batch == 0 else f"epoch {epoch + 1}, step {step}"
        return (
            f"The last good checkpoint {self.rundir.last_checkpoint} ({where}) is kept; continue "
            "from it with --resume after changing the config."
        )

    def _stopped(self, exc: TrainingStopped) -> TrainingStopped:
        """Log and record why training stopped; the error to raise, with the full message."""
        pos = self._position
        where = f"epoch {pos.epoch + 1}, step {pos.index + 1} of {pos.length}"
        kept = self._kept()
        message = f"{self.task.label}training stopped at {where}: {exc.what}. {kept}"
        if exc.advice:
            message += f" Try: {exc.advice}"
        if self.rundir is not None:
            self.log({"event": "stopped", "reason": exc.what})
            self.rundir.write_results(
                {
                    "status": "stopped",
                    "reason": exc.what,
                    "advice": exc.advice,
                    "epochs_completed": self.epoch,
                    "step": self.step,
                    "last_good_checkpoint": None
                    if self.saved_at is None
                    else {
                        "path": str(self.rundir.last_checkpoint),
                        "epochs": self.saved_at[0],
                        "step": self.saved_at[2],
                    },
                    **self.task.results(),
                }
            )
        return type(exc)(exc.what, exc.advice, message)

    def _resolve_fast_path(self) -> None:
        """The autocast dtype, compilation and memory format this run trains with."""
        cfg, task, dev = self.cfg, self.task, self.device
        self.amp = resolve_precision(cfg.precision_mode, dev, task.name)
        unsafe = dev.type == "cpu" and not task.cpu_auto_bf16()
        if cfg.precision_mode == "auto" and unsafe:
            self.amp = None
        self.compile = resolve_compile(cfg.compile, dev, task.name)
        self.channels_last = resolve_channels_last(cfg.channels_last, dev, task.name, self.amp)

    def fast_path(self) -> dict[str, Any]:
        """What ``train.precision``, ``train.compile`` and ``train.channels_last`` resolved to."""
        names = {torch.bfloat16: "bf16", torch.float16: "fp16"}
        return {
            "precision": names.get(self.amp, "fp32"),
            "compile": self.compile,
            "channels_last": self.channels_last,
        }

    def _final_results(self) -> dict[str, Any]:
        """results.json of this run; an interrupted call (``stop_after``) writes none."""
        results: dict[str, Any] = {
            "status": "done" if self.epoch >= self.cfg.epochs else "partial",
            "epochs_completed": self.epoch,
            "epochs": self.cfg.epochs,
            "steps": self.step,
            "world_size": self.dist.world_size,
            "train_seconds": round(self.train_seconds, 3),
            "seconds_this_call": round(self.seconds_this_call, 3),
            "checkpoint": str(self.rundir.last_checkpoint),
            "fast_path": self.fast_path(),
            **self.task.results(),
        }
        if self.last_eval:
            results["final"] = dict(self.last_eval)
        if self.stop_after is None or self._complete():
            self.rundir.write_results(results)
        return results

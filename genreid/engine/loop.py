"""The one training loop; a :class:`Task` plugs in what it trains, hooks do the rest.

The loop owns the run itself: the run folder (new, or resumed with ``--resume``), the device,
DDP, the objects the task registers (:class:`~genreid.engine.task_services.TaskServices`), RNG
seeding, the steps and epochs with the time spent waiting for data, and ``results.json``. The
rest are :class:`~genreid.engine.hooks.Hook` objects it calls at fixed points
(``engine/hooks/``): periodic evaluation, metrics.jsonl and TensorBoard, progress with ETA,
checkpoints (never with NaN weights) and the thread/resource guard. Adding a task never
touches this file (docs/ARCHITECTURE.md).

Resume is exact: a checkpoint holds the loop's position (epoch, batch within it, global
step), the running epoch sums and the RNG state; tasks that reseed every epoch (re-ID) get the
same seed for an epoch whatever happened before, and samplers skip the batches already
trained on without reading them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

from genreid.core import distributed as ddp
from genreid.core.checkpoint import seed_everything
from genreid.core.cpu import JobRegistry
from genreid.core.runs import RunDir, read_results
from genreid.engine.epoch_stats import EpochStats, StepInfo, epoch_seed
from genreid.engine.errors import NonFiniteError, TrainingError, TrainingStopped
from genreid.engine.fastpath import resolve_fast_path, use_fused
from genreid.engine.hooks import Checkpointer, Hook, default_hooks
from genreid.engine.loop_config import LoopConfig
from genreid.engine.resume import check_resumable, config_differences, note_resume, resumes
from genreid.engine.run_results import final_results, stopped_results
from genreid.engine.task_services import TaskServices

__all__ = [  # what tasks, pipelines and tests import from here
    "Hook", "Loop", "LoopConfig", "NonFiniteError", "StepInfo", "Task", "TrainingError",
    "TrainingStopped", "config_differences", "epoch_seed",
]  # fmt: skip


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
        """The keys the loop reads (device, precision, cadence): the config's ``train``."""
        return self.cfg.train

    @classmethod
    def train(
        cls,
        cfg: Any,
        out: str | Path,
        resume: bool | Literal["auto"] = False,
        hooks: Sequence[Hook] = (),
    ) -> dict[str, Any]:
        """Run (or resume) a whole run of this task into ``out`` (``hooks``: more hooks, after
        the built-in ones); returns its results."""
        return Loop(cls(cfg), out, resume, hooks=hooks).run()

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


class Loop(TaskServices):
    """Runs (or resumes) one task into the run folder ``out``; what the task calls on it is
    :class:`TaskServices`.

    ``resume``: True (continue ``out``; it must hold a checkpoint), False (a new run; a folder
    holding a checkpoint is refused) or ``"auto"`` (continue when there is a checkpoint).
    ``stop_after``: end this call after that many epochs have completed (tests of resume).
    ``hooks``: more :class:`Hook` objects, called after the built-in ones (``engine/hooks/``).
    """

    def __init__(
        self,
        task: Task,
        out: str | Path,
        resume: bool | Literal["auto"] = False,
        stop_after: int | None = None,
        hooks: Sequence[Hook] = (),
    ) -> None:
        super().__init__()
        self.task = task
        self.cfg: LoopConfig = task.loop_config
        self.out = Path(out)
        self.resume = resume
        self.stop_after = stop_after
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch done
        self.step = 0  # steps done in all
        self.lengths: list[int] = []  # steps of every epoch (known once training starts)
        self.train_seconds = 0.0
        self.saved_at: tuple[int, int, int] | None = None  # (epoch, batch, step) of last.pt
        self.stats = EpochStats()
        self.last_eval: dict[str, Any] = {}
        self.rundir: RunDir | None = None
        self.jobs = JobRegistry()
        self.resuming = False
        self.seconds_this_call = 0.0
        self.position = StepInfo(0, 0, 0, 0)
        self.checkpointer = Checkpointer()
        self.hooks: list[Hook] = [*default_hooks(self.checkpointer, self.jobs), *hooks]

    def run(self) -> dict[str, Any]:
        """Train to ``train.epochs`` (or until the task is finished); returns the results.
        Every hook is closed, then the run folder and DDP, even when one of them fails: the
        run's own error wins (the close errors noted on it), else the first close error."""
        try:
            results = self._run()
        except BaseException as exc:
            for error in self._close():
                exc.add_note(f"while closing the run: {type(error).__name__}: {error}")
            raise
        errors = self._close()
        if errors:
            raise errors[0]
        return results

    def _run(self) -> dict[str, Any]:
        try:
            self._start()
            if self.resuming and self.complete():
                previous = read_results(self.out)
                if previous and previous.get("status") == "done":
                    return previous  # resuming a finished run changes nothing
            else:
                self._train()
            return final_results(self)
        except TrainingStopped as exc:
            raise stopped_results(self, exc) from None

    def _close(self) -> list[BaseException]:
        """Close every hook, the run folder and DDP, each also after an earlier one raised;
        returns what they raised."""
        closers: list[Callable[[], None]] = [partial(hook.close, self) for hook in self.hooks]
        if self.rundir is not None:
            closers.append(self.rundir.close)
        if self.dist is not None and self.dist.enabled:
            closers.append(ddp.cleanup)
        errors: list[BaseException] = []
        for close in closers:
            try:
                close()
            except BaseException as exc:  # the rest must close too
                errors.append(exc)
        return errors

    def _call(self, point: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    def _start(self) -> None:
        self._call("before_setup")
        self.dist = ddp.init_distributed(self.cfg.device)
        self.device = self.dist.device
        fast = resolve_fast_path(self.cfg, self.device, self.task.name, self.task.cpu_auto_bf16)
        self.amp, self.compile, self.channels_last, self.fused = fast
        self.resuming = resumes(self.out, self.resume)
        if self.resuming:
            check_resumable(self.task.cfg, self.out, self.task.resumable_keys)
        self.rundir = RunDir(self.out, is_main=self.dist.is_main)
        seed_everything(self.task.seed)
        self.task.setup(self)
        if self.resuming:
            self.checkpointer.load(self, self.rundir.last_checkpoint)
            if self.is_main:
                note_resume(self.task.cfg, self.out, self.step)
        else:
            self.rundir.truncate_metrics(-1)  # leftovers of a run that never saved
            stage = self.task.stage or self.task.name
            self.rundir.record_config(self.task.cfg, self.task.seed, stage)
            if not self.task.reseed_each_epoch and self.dist.rank > 0:
                seed_everything(epoch_seed(self.task.seed, -1, self.dist.rank))  # own noise
        for opt in self.optimizers.values():  # after a resume too: this run's setting wins
            use_fused(opt, self.fused)
        self._call("before_train")

    def complete(self) -> bool:
        """Whether the run has nothing left to train (all epochs, or the task finished)."""
        return self.epoch >= self.cfg.epochs or self.task.finished()

    def _train(self) -> None:
        cfg, task = self.cfg, self.task
        self.lengths = [task.epoch_length(e) for e in range(cfg.epochs)]
        if self.lengths and self.lengths[0] == 0:
            raise TrainingError(
                f"{task.label}no training batch: fewer training images than one batch per "
                "process; lower train.batch_size or add images"
            )
        t_call = time.perf_counter()
        stop = task.finished()
        while self.epoch < cfg.epochs and not stop:
            epoch, n = self.epoch, self.lengths[self.epoch]
            if self.batch_in_epoch == 0:
                self.stats = EpochStats()
                if task.reseed_each_epoch:
                    seed_everything(epoch_seed(task.seed, epoch, self.dist.rank))
            self._call("before_epoch", epoch)
            stop = self._run_epoch(iter(task.batches(epoch, self.batch_in_epoch)), epoch, n)
            if self.batch_in_epoch >= n:
                self._end_epoch(epoch)
                if self.stop_after is not None and self.epoch >= self.stop_after:
                    break
        self._call("after_train")
        self.seconds_this_call = time.perf_counter() - t_call

    def _run_epoch(self, batches: Iterator[Any], epoch: int, n: int) -> bool:
        """Steps until the epoch ends; True when the task says it is finished."""
        task = self.task
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
            at = self.position = StepInfo(epoch, self.batch_in_epoch, n, self.step)
            self._call("before_step", at)
            values = task.step(batch, at)
            t2 = time.perf_counter()
            images = task.batch_images(batch) * self.dist.world_size
            self.stats.add(values, images, t1 - t0, t2 - t1)
            self.train_seconds += t2 - t0
            self.batch_in_epoch += 1
            self.step += 1
            self._call("after_step", at, values)
            if task.finished():
                return True
        return False

    def _end_epoch(self, epoch: int) -> None:
        for module in self.modules.values():
            ddp.broadcast_buffers(module)
        record = {**self.stats.record(), **self.task.end_epoch(epoch)}
        for hook in self.hooks:
            record.update(hook.end_epoch(self, epoch))
        steps = self.stats.steps
        self.position = StepInfo(epoch, steps, steps, self.step)
        self.epoch, self.batch_in_epoch = epoch + 1, 0
        self._call("after_epoch", record)
        ddp.barrier()

"""The training loop on its own, through a toy task written here: a new task plugs in without
touching the loop, and gets checkpoints, exact resume (also mid-epoch), guards, evaluation,
metrics with data-wait time, progress lines and the oversubscription warning."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from genreid.core.cpu import JobRegistry, oversubscription
from genreid.core.errors import RunFolderError
from genreid.core.progress import Progress
from genreid.engine.loop import Hook, Loop, LoopConfig, NonFiniteError, StepInfo, Task


@dataclass
class ToyTrain(LoopConfig):
    epochs: int = 3
    progress: bool = False
    threads: int | None = 1
    device: str = "cpu"
    batches: int = 5
    lr: float = 0.1


@dataclass
class ToyConfig:
    seed: int = 0
    train: ToyTrain = field(default_factory=ToyTrain)


class ToyTask(Task):
    """Noisy linear regression: dropout and fresh noise draw from the RNG every step."""

    name = "toy"
    config_class = ToyConfig
    nan_advice = "a lower toy lr."

    def setup(self, loop: Loop) -> None:
        self.loop = loop
        self.net = loop.module("net", torch.nn.Sequential(torch.nn.Linear(4, 8),
                                                          torch.nn.Dropout(0.3),
                                                          torch.nn.Linear(8, 1)))  # fmt: skip
        self.opt = loop.optimizer(
            "opt", torch.optim.SGD(self.net.parameters(), lr=self.cfg.train.lr)
        )
        self.w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.evaluations = 0

    def epoch_length(self, epoch: int) -> int:
        return self.cfg.train.batches

    def batches(self, epoch: int, start: int):
        g = torch.Generator().manual_seed(epoch)
        xs = [torch.randn(8, 4, generator=g) for _ in range(self.cfg.train.batches)]
        return ({"image": x} for x in xs[start:])

    def step(self, batch: dict[str, Any], at: StepInfo) -> dict[str, float]:
        x = batch["image"]
        y = x @ self.w + 0.1 * torch.randn(x.shape[0], 1)
        loss = ((self.net(x) - y) ** 2).mean()
        value = self.loop.finite("toy loss", loss)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": value}

    def after_load(self) -> None:
        for group in self.opt.param_groups:  # a resume may change the lr on purpose
            group["lr"] = self.cfg.train.lr

    def evaluate(self) -> dict[str, float]:
        self.evaluations += 1
        return {"score": float(self.net[0].weight.detach().sum())}

    def results(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations}


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints/last.pt", weights_only=True)["modules"]["net"]


def test_a_new_task_trains_and_writes_a_run_folder(tmp_path):
    res = Loop(ToyTask(ToyConfig()), tmp_path / "run").run()
    assert res["status"] == "done" and res["epochs_completed"] == 3 and res["steps"] == 15
    assert res["evaluations"] == 1 and "score" in res["final"]  # eval_every 0: at the end only
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    ends = [r for r in rows if r.get("epoch_end")]
    assert [(r["epoch"], r["step"], r["steps"]) for r in ends] == [
        (1, 5, 5),
        (2, 10, 5),
        (3, 15, 5),
    ]
    for r in ends:
        assert r["data_seconds"] >= 0 and r["compute_seconds"] > 0
        assert r["data_share"] == pytest.approx(r["data_seconds"] / r["seconds"])
        assert r["images"] == 40
    assert ends[-1]["loss"] < ends[0]["loss"]
    for name in ("config.yaml", "env.json", "results.json", "checkpoints/last.pt"):
        assert (tmp_path / "run" / name).is_file()
    with pytest.raises(RunFolderError, match="--resume"):
        Loop(ToyTask(ToyConfig()), tmp_path / "run").run()
    with pytest.raises(RunFolderError, match="nothing to resume"):
        Loop(ToyTask(ToyConfig()), tmp_path / "none", resume=True).run()


def test_resume_from_an_epoch_end_and_from_mid_epoch_is_exact(tmp_path, monkeypatch):
    cfg = ToyConfig(train=ToyTrain(checkpoint_every=2, eval_every=1))
    Loop(ToyTask(cfg), tmp_path / "full").run()
    Loop(ToyTask(cfg), tmp_path / "epoch", stop_after=1).run()
    assert not (tmp_path / "epoch/results.json").exists()  # an interrupted call writes none
    Loop(ToyTask(cfg), tmp_path / "epoch", resume=True).run()

    calls = {"n": 0}
    original = ToyTask.step

    def crash_at_step_8(self, batch, at):
        calls["n"] += 1
        if calls["n"] == 8:  # epoch 2, batch 3: the last checkpoint was written at step 6
            raise KeyboardInterrupt
        return original(self, batch, at)

    monkeypatch.setattr(ToyTask, "step", crash_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        Loop(ToyTask(cfg), tmp_path / "mid").run()
    ckpt = torch.load(tmp_path / "mid/checkpoints/last.pt", weights_only=True)
    assert (ckpt["loop"]["epoch"], ckpt["loop"]["batch_in_epoch"], ckpt["loop"]["step"]) == (
        1,
        1,
        6,
    )
    monkeypatch.setattr(ToyTask, "step", original)
    Loop(ToyTask(cfg), tmp_path / "mid", resume="auto").run()
    full = weights(tmp_path / "full")
    for run in ("epoch", "mid"):
        got = weights(tmp_path / run)
        assert all(torch.equal(full[k], got[k]) for k in full), run

    def losses(run):
        rows = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["loss"], r.get("score")) for r in map(json.loads, rows)]

    assert losses("mid") == losses("full") == losses("epoch")  # the epoch sums survive resume


def test_a_nan_loss_stops_before_the_weights_and_keeps_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    Loop(ToyTask(ToyConfig()), run).run()
    good = (run / "checkpoints/last.pt").read_bytes()
    cfg = ToyConfig(train=ToyTrain(epochs=5, lr=1e30))
    with pytest.raises(NonFiniteError) as err:
        Loop(ToyTask(cfg), run, resume=True).run()
    msg = str(err.value)
    assert "toy loss became" in msg and "(after epoch 3) is kept" in msg and "a lower toy lr" in msg
    assert (run / "checkpoints/last.pt").read_bytes() == good
    res = json.loads((run / "results.json").read_text())
    assert res["status"] == "stopped" and res["last_good_checkpoint"]["epochs"] == 3
    assert "toy loss became" in res["reason"]


def test_progress_in_a_log_is_plain_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENREID_PROGRESS", "lines")
    Loop(ToyTask(ToyConfig(train=ToyTrain(progress=True))), tmp_path / "run").run()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [x for x in err.splitlines() if x.startswith("epoch ")]
    assert [x.split(":")[0] for x in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("img/s" in x and "data" in x and "loss" in x for x in lines)


def test_progress_line_has_counts_rate_and_eta(monkeypatch):
    import io

    stream = io.StringIO()
    p = Progress(200, desc="epoch 1/2", unit="step", every=0.0, stream=stream)
    assert p.mode == "lines"  # not a terminal
    p.update(50, loss=1.2345678)
    line = stream.getvalue().strip().splitlines()[-1]
    assert line.startswith("epoch 1/2: 50/200 (25%)") and "step/s" in line and "ETA" in line
    assert "loss 1.235" in line


def test_oversubscription_is_detected_but_changes_nothing(tmp_path, monkeypatch):
    import os

    from genreid.core import cpu

    monkeypatch.setattr(cpu, "cores", lambda: 2)
    registry = JobRegistry(tmp_path / "jobs")
    assert registry.others() == []
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs/1.json").write_text(json.dumps({"pid": os.getppid(), "threads": 2}))
    (tmp_path / "jobs/2.json").write_text(json.dumps({"pid": 2**22 + 12345, "threads": 2}))
    others = registry.others()
    assert [j["threads"] for j in others] == [2]  # the dead job's file is gone
    assert not (tmp_path / "jobs/2.json").exists()
    msg = oversubscription(2, others)
    assert "train.threads=1" in msg and "4 threads on 2 cores" in msg
    assert oversubscription(1, [{"threads": 1}]) is None
    registry.enter(1, "out")
    assert registry.path.is_file()
    registry.leave()
    assert not (tmp_path / "jobs" / f"{os.getpid()}.json").exists()


def test_loop_checks_that_epoch_lengths_are_positive(tmp_path):
    cfg = ToyConfig(train=ToyTrain(batches=0))
    with pytest.raises(Exception, match="no training batch"):
        Loop(ToyTask(cfg), tmp_path / "run").run()


class Recorder(Hook):
    """A user hook writing down every call it gets, and what the loop looked like then."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def before_setup(self, loop):
        self.calls.append(("before_setup", loop.rundir is None, torch.get_num_threads()))

    def before_train(self, loop):
        self.calls.append(("before_train", sorted(loop.modules), loop.epoch, loop.step))

    def before_epoch(self, loop, epoch):
        self.calls.append(("before_epoch", epoch, loop.batch_in_epoch))

    def before_step(self, loop, at):
        self.calls.append(("before_step", at.epoch, at.index, loop.step))

    def after_step(self, loop, at, values):
        self.calls.append(("after_step", at.epoch, at.index, loop.step, sorted(values)))

    def end_epoch(self, loop, epoch):
        self.calls.append(("end_epoch", epoch, loop.epoch))
        return {"hook_value": 10 + epoch}

    def after_epoch(self, loop, record):
        saved = torch.load(loop.rundir.last_checkpoint, weights_only=True)["loop"]["epoch"]
        self.calls.append(("after_epoch", loop.epoch, "score" in record, saved))

    def after_train(self, loop):
        self.calls.append(("after_train", loop.epoch, loop.step))

    def close(self, loop):
        self.calls.append(("close",))


def test_a_user_hook_gets_every_call_in_order(tmp_path):
    hook = Recorder()
    cfg = ToyConfig(train=ToyTrain(epochs=2, batches=2, eval_every=1))
    Loop(ToyTask(cfg), tmp_path / "run", hooks=[hook]).run()
    epoch = [
        [("before_step", e, i, 2 * e + i), ("after_step", e, i, 2 * e + i + 1, ["loss"])]
        for e in (0, 1)
        for i in (0, 1)
    ]
    assert hook.calls == [
        ("before_setup", True, 1),  # threads are set before any hook runs
        ("before_train", ["net"], 0, 0),  # the task is set up
        ("before_epoch", 0, 0),
        *epoch[0], *epoch[1],
        ("end_epoch", 0, 0),  # before the epoch counts as completed
        ("after_epoch", 1, True, 1),  # evaluated and checkpointed before user hooks
        ("before_epoch", 1, 0),
        *epoch[2], *epoch[3],
        ("end_epoch", 1, 1),
        ("after_epoch", 2, True, 2),
        ("after_train", 2, 4),
        ("close",),
    ]  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["hook_value"] for r in rows if r.get("epoch_end")] == [10, 11]


def test_a_user_hook_is_closed_after_an_error_and_sees_a_resume_mid_epoch(tmp_path):
    class DivergesAtStep6(ToyTask):  # the 3rd batch of epoch 2, after a mid-epoch checkpoint
        def step(self, batch, at):
            if at.step == 6:
                raise NonFiniteError("the toy loss became NaN", self.nan_advice)
            return super().step(batch, at)

    hook = Recorder()
    cfg = ToyConfig(train=ToyTrain(epochs=2, batches=4, checkpoint_every=3))
    with pytest.raises(NonFiniteError, match="epoch 2, step 3 of 4"):
        Loop(DivergesAtStep6(cfg), tmp_path / "run", hooks=[hook]).run()
    names = [c[0] for c in hook.calls]
    assert names[-2:] == ["before_step", "close"] and "after_train" not in names
    hook = Recorder()
    Loop(ToyTask(cfg), tmp_path / "run", resume=True, hooks=[hook]).run()
    assert hook.calls[1:3] == [("before_train", ["net"], 1, 6), ("before_epoch", 1, 2)]
    assert [c[1:3] for c in hook.calls if c[0] == "before_step"] == [(1, 2), (1, 3)]


class FailsToClose(Hook):
    """A user hook whose ``close`` raises."""

    def close(self, loop):
        raise RuntimeError("the hook's file could not be flushed")


def test_a_hook_that_fails_to_close_does_not_stop_the_others_nor_hide_the_error(
    tmp_path, monkeypatch
):
    from genreid.core.runs import RunDir

    closed: list[str] = []
    real_close = RunDir.close
    monkeypatch.setattr(RunDir, "close", lambda self: closed.append("rundir") or real_close(self))
    cfg = ToyConfig(train=ToyTrain(epochs=1, batches=2))
    later = Recorder()
    # the run went well: the close error is raised, after every other hook and the run folder
    with pytest.raises(RuntimeError, match="could not be flushed"):
        Loop(ToyTask(cfg), tmp_path / "ok", hooks=[FailsToClose(), later]).run()
    assert later.calls[-1] == ("close",) and closed == ["rundir"]
    assert json.loads((tmp_path / "ok/results.json").read_text())["status"] == "done"

    class Diverges(ToyTask):
        def step(self, batch, at):
            raise NonFiniteError("the toy loss became NaN", self.nan_advice)

    # the run failed: its own error is what propagates, the close error noted on it
    later, closed[:] = Recorder(), []
    with pytest.raises(NonFiniteError, match="toy loss became NaN") as err:
        Loop(Diverges(cfg), tmp_path / "bad", hooks=[FailsToClose(), later]).run()
    assert later.calls[-1] == ("close",) and closed == ["rundir"]
    assert any("could not be flushed" in note for note in err.value.__notes__)


class StepCounter(Hook):
    """A user hook with state: the steps it saw (counted before each, as hooks/base.py says:
    a mid-epoch checkpoint is written before a user hook's after_step), kept in checkpoints."""

    def __init__(self) -> None:
        self.steps = 0

    def before_step(self, loop, at):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


def test_a_hooks_state_is_kept_in_checkpoints_and_restored_on_resume(tmp_path, monkeypatch):
    cfg = ToyConfig(train=ToyTrain(checkpoint_every=2))
    whole = StepCounter()
    Loop(ToyTask(cfg), tmp_path / "whole", hooks=[whole]).run()
    assert whole.steps == 15
    ckpt = torch.load(tmp_path / "whole/checkpoints/last.pt", weights_only=True)
    assert ckpt["hooks"] == {"StepCounter": {"steps": 15}}
    # stopped after an epoch, then resumed by a new hook object
    Loop(ToyTask(cfg), tmp_path / "epoch", stop_after=1, hooks=[StepCounter()]).run()
    resumed = StepCounter()
    Loop(ToyTask(cfg), tmp_path / "epoch", resume=True, hooks=[resumed]).run()
    assert resumed.steps == whole.steps
    # interrupted mid-epoch (the last checkpoint at step 6): steps 7 and 8 are not counted twice
    original = ToyTask.step

    def crash_at_step_8(self, batch, at):
        if at.step == 7:
            raise KeyboardInterrupt
        return original(self, batch, at)

    monkeypatch.setattr(ToyTask, "step", crash_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        Loop(ToyTask(cfg), tmp_path / "mid", hooks=[StepCounter()]).run()
    monkeypatch.setattr(ToyTask, "step", original)
    resumed = StepCounter()
    Loop(ToyTask(cfg), tmp_path / "mid", resume=True, hooks=[resumed]).run()
    assert resumed.steps == whole.steps
    # hooks without state (the built-in ones, Recorder) add nothing to a checkpoint
    Loop(ToyTask(cfg), tmp_path / "plain", hooks=[Recorder()]).run()
    assert "hooks" not in torch.load(tmp_path / "plain/checkpoints/last.pt", weights_only=True)


def test_task_train_hands_user_hooks_to_the_loop(tmp_path):
    counter = StepCounter()
    assert ToyTask.train(ToyConfig(), tmp_path / "run", hooks=[counter])["steps"] == 15
    assert counter.steps == 15

"""Resuming a run folder: whether a call starts a run or continues one (``--resume``), which
config keys may change (``Task.resumable_keys``), and env.json's list of every resume."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from genreid.core.config import load_config, save_config, to_dict
from genreid.core.errors import RunFolderError
from genreid.core.files import write_json_atomic


def resumes(out: Path, resume: bool | Literal["auto"]) -> bool:
    """Whether a call with ``resume`` continues the run in ``out`` (it holds checkpoints/last.pt);
    refuses to resume nothing, and to start a new run over one."""
    has_ckpt = (out / "checkpoints" / "last.pt").is_file()
    if resume is True and not has_ckpt:
        raise RunFolderError(
            f"nothing to resume at {out}: checkpoints/last.pt does not exist (no epoch "
            "finished). Drop --resume to start again."
        )
    if resume is False and has_ckpt:
        raise RunFolderError(
            f"{out} already holds a run (checkpoints/last.pt); pass --resume to "
            "continue it or choose another --out"
        )
    return has_ckpt and resume is not False


PARSER_OPTIONS = ("data.options", "options")  # a dataset parser's options: compared whole


def config_differences(
    saved: dict[str, Any], new: dict[str, Any], allowed: tuple[str, ...]
) -> list[str]:
    """Dotted keys whose values differ between two config dicts, outside the ``allowed``
    prefixes (``train.``) and keys (``data.workers``). A dataset's parser options
    (``data.options``; a pipeline's ``options``) are one value; a plugin's options
    (``labels.options.epsilon``) are keys like any other."""

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict) and f"{prefix}{k}" not in PARSER_OPTIONS:
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


def check_resumable(cfg: Any, out: Path, allowed: tuple[str, ...]) -> None:
    """Refuse to resume ``out`` with a config that differs from its config.yaml outside the
    ``allowed`` keys: its checkpoint was trained with that config."""
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        return
    saved = load_config(type(cfg), saved_path)
    differ = config_differences(to_dict(saved), to_dict(cfg), allowed)
    if differ:
        raise RunFolderError(
            f"cannot resume {out} with a different {', '.join(differ)} (the checkpoint "
            "was trained with the run's config.yaml); only "
            f"{', '.join(allowed)} may change on resume."
        )


def note_resume(cfg: Any, out: Path, step: int) -> None:
    """config.yaml is what runs now; env.json lists every resume (when, command, step)."""
    save_config(cfg, out / "config.yaml")
    env_path = out / "env.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    env.setdefault("resumed", []).append(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": sys.argv,
            "from_step": step,
        }
    )
    write_json_atomic(env, env_path)

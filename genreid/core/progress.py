"""Progress that reads well on a terminal and in a log file.

On a terminal: a tqdm bar with rate and ETA. When the output is a file or a pipe (a log,
``nohup``, CI): one plain line every ``every`` seconds and one at the end, never carriage
returns. ``GENREID_PROGRESS=bar|lines|off`` forces a mode.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO


def _fmt_seconds(s: float) -> str:
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class Progress:
    """Count work done out of ``total``; ``update(n, key=value, ...)`` also shows the values."""

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        enabled: bool = True,
        initial: int = 0,
        every: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = initial
        self.every = every
        self.stream = stream or sys.stderr
        mode = os.environ.get("GENREID_PROGRESS", "")
        if not enabled or mode == "off":
            self.mode = "off"
        elif mode in ("bar", "lines"):
            self.mode = mode
        else:
            self.mode = "bar" if self.stream.isatty() else "lines"
        self.postfix: dict[str, Any] = {}
        self.t0 = self.last_print = time.perf_counter()
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm  # lazy: only a terminal needs it

            self._bar = tqdm(
                total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                leave=False, file=self.stream,
            )  # fmt: skip

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc, refresh=False)

    def update(self, n: int = 1, **values: Any) -> None:
        self.n += n
        if values:
            self.postfix.update(values)
        if self._bar is not None:
            if values:
                shown = {k: _fmt_value(v) for k, v in self.postfix.items()}
                self._bar.set_postfix(shown, refresh=False)
            self._bar.update(n)
        elif self.mode == "lines" and time.perf_counter() - self.last_print >= self.every:
            self._print_line()

    def line(self) -> str:
        """The plain progress line: counts, percent, rate, ETA and the latest values."""
        elapsed = time.perf_counter() - self.t0
        done = self.n - self.start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.desc}:" if self.desc else "", f"{self.n}"]
        if self.total:
            parts[-1] += f"/{self.total} ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{rate:.3g} {self.unit}/s")
        if self.total and rate > 0:
            parts.append(f"ETA {_fmt_seconds((self.total - self.n) / rate)}")
        parts.append(f"elapsed {_fmt_seconds(elapsed)}")
        parts += [f"{k} {_fmt_value(v)}" for k, v in self.postfix.items()]
        return " ".join(p for p in parts if p)

    def _print_line(self) -> None:
        self.last_print = time.perf_counter()
        print(self.line(), file=self.stream, flush=True)

    def write(self, line: str) -> None:
        """Print a line (e.g. an epoch summary) without breaking the bar; nothing when off."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar; in a log, a last line unless the work was too quick to report."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "lines" and self.n > self.start_n and self._reported():
            self._print_line()
        self.mode = "off"

    def _reported(self) -> bool:
        """Whether a line was printed, or the work took long enough to deserve one."""
        return self.last_print > self.t0 or time.perf_counter() - self.t0 >= min(self.every, 2.0)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Dask distributed as an executor of jobs: a client of a running scheduler, with one-line
errors that say how to install the extra or start a scheduler and its workers.

Dask is optional (``pip install genreid[cluster]``) and imported only here, when a command
asks for it; a client's executor has the ``concurrent.futures`` interface of the local
process pool, so the same scheduling loop drives both. A scheduler lost while jobs run is a
:class:`SchedulerLostError`, one line, not Dask's traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import CancelledError, Executor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from genreid.core.errors import ConfigError, GenreidError

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT = 5.0  # seconds; Dask's own default waits 30 s for a scheduler
HOW_TO_START = (
    "start one with `dask scheduler` (it prints its address) and one worker per job slot "
    "with `dask worker ADDRESS --nthreads 1`"
)


def _import_client(address: str) -> type[Client]:
    """Dask's Client, or a one-line error naming the extra that installs it; a malformed
    ``address`` is refused before a client starts (one that fails then stalls the exit)."""
    try:
        from distributed import Client  # lazy: an optional extra, only for --executor dask
        from distributed.comm import get_address_host_port
    except ImportError:
        raise ConfigError(
            "--executor dask needs Dask distributed: pip install genreid[cluster]"
        ) from None
    try:
        get_address_host_port(address)
    except ValueError as exc:
        raise ConfigError(
            f"--address {address}: expected tcp://HOST:PORT ({_first_line(exc)})"
        ) from None
    return Client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Client:
    """A client of the Dask scheduler at ``address`` (``tcp://HOST:PORT``), given up after
    ``timeout`` seconds; its workers must run one thread each (see ``check_workers``)."""
    Client = _import_client(address)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"--address {address}: found no Dask scheduler ({_first_line(exc)}); {HOW_TO_START}"
        ) from None
    try:
        check_workers(client, address)
    except ConfigError:
        client.close()
        raise
    return client


def check_workers(client: Client, address: str) -> None:
    """Refuse workers with several threads: a job redirects its process's output into its log
    and sets the process's torch threads, so two jobs must never share a worker process."""
    many = {w: n for w, n in client.nthreads().items() if n > 1}
    if many:
        worker, n = next(iter(many.items()))
        raise ConfigError(
            f"--address {address}: worker {worker} runs {n} threads, and a job needs a worker "
            "process of its own; start workers with `dask worker ADDRESS --nthreads 1`"
        )


class SchedulerLostError(GenreidError, RuntimeError):
    """The Dask scheduler died or became unreachable while jobs ran on its workers."""


def scheduler_lost(address: str, exc: BaseException | None = None) -> SchedulerLostError:
    """The one-line error for a scheduler lost mid-run: what happened, that rerunning goes on,
    and the first line of the error it ended with (``exc``: a cause other than the loss shows)."""
    said = ""
    if exc is not None:
        first = _first_line(exc)
        name = type(exc).__name__
        said = f" ({name})" if first == name else f" ({name}: {first})"
    return SchedulerLostError(
        f"lost the Dask scheduler at {address} while jobs ran (it stopped, or the network to it "
        "failed); finished jobs are kept, and running the same command again continues with "
        f"the rest; if the scheduler is down, {HOW_TO_START}{said}"
    )


def _lost(client: Client, exc: BaseException) -> bool:
    """Whether ``exc`` came from losing the scheduler: Dask cancels every pending job when
    its connection closes, and a client that is not running cannot take new ones."""
    if isinstance(exc, CancelledError):
        return True
    return isinstance(exc, Exception) and client.status != "running"


def _close_quietly(client: Client) -> None:
    """Close a client whose scheduler is gone without Dask logging the reconnection it gives
    up as a traceback."""
    log = logging.getLogger("distributed.client")
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        client.close(timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        pass  # the scheduler is gone: nothing left to tell it
    finally:
        log.setLevel(level)


@contextmanager
def dask_executor(address: str) -> Iterator[tuple[Executor, int]]:
    """The workers of the Dask scheduler at ``address`` as a ``concurrent.futures`` executor,
    and how many there are now. A job is submitted once and never retried when it raises
    (``retries=0``); Dask reschedules it only when its worker dies
    (``distributed.scheduler.allowed-failures`` times, 3 by default). A scheduler lost
    meanwhile ends it with a :class:`SchedulerLostError` (one line, ending with the first
    line of the error raised then)."""
    client = connect(address)
    lost = False
    try:
        pool = None
        try:
            workers = len(client.nthreads())
            pool = client.get_executor(pure=False, retries=0)
            yield pool, workers
        except BaseException as exc:
            lost = _lost(client, exc)
            if lost:
                raise scheduler_lost(address, exc) from None
            raise
        finally:
            if pool is not None and not lost:  # a lost scheduler's jobs may never resolve
                pool.shutdown(wait=True)
    finally:
        if lost:
            _close_quietly(client)
        else:
            client.close()

"""Dask distributed as an executor of jobs: a client of a running scheduler, with one-line
errors that say how to install the extra or start a scheduler and its workers.

Dask is optional (``pip install genreid[cluster]``) and imported only here, when a command
asks for it; a client's executor has the ``concurrent.futures`` interface of the local
process pool, so the same scheduling loop drives both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genreid.core.errors import ConfigError

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

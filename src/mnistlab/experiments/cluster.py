"""Work spread over a Dask cluster: one task per configuration, results back to the client.

``--cluster ADDRESS`` (or ``MNISTLAB_CLUSTER``) is a ``dask.distributed``
scheduler's address, such as ``tcp://10.0.0.5:8786``; ``local`` starts a
LocalCluster of worker processes on this machine, one per core (which import
a script that asks for one again: it must do so under
``if __name__ == "__main__":``, as for multiprocessing). A task is a
plain function of plain arguments (a family's name, its hyperparameters, a
DataChoice) that returns plain data; each worker loads the data itself through
the normal search order (in the client's ``--data-dir`` or ``MNISTLAB_DATA_DIR``
where one is given, a folder each worker must then have), and only the client
writes files, so the machines need no shared filesystem. A task whose worker
dies is run again on another (Dask reschedules it); one that fails is reported
with its error, and the others go on.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..callbacks import SILENT, FitProgress
from .._system import usable_cores
from ..errors import MnistlabError, ParameterError, one_line

ENV = "MNISTLAB_CLUSTER"
LOCAL = "local"


CONNECT_SECONDS = 10  # for the scheduler to answer, handshake included
WATCH_SECONDS = 2  # how often a running job asks whether the cluster still has a worker


class SchedulerLostError(MnistlabError):
    """The scheduler went away while tasks ran: none of the tasks left can finish (those done have)."""


def cluster_address(address: str | None) -> str | None:
    """``address``, else ``MNISTLAB_CLUSTER``, else None (no cluster: run here, one after another); an empty
    address given is refused, not taken for none (the variable set empty is unset, as a shell's)."""
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ParameterError("cluster", f"must be 'local' or a scheduler's address, got {address!r}")
    if address or not (address := os.environ.get(ENV)):
        return address or None
    try:  # the variable's form, said as the variable's (it was blamed on a --cluster not given)
        _check_form(address)
    except ParameterError as exc:
        raise ParameterError(None, f"{ENV}: {exc.problem}") from None
    return address


def _check_form(address: str) -> str | None:
    """A ParameterError for an ``address`` that no connection could reach: not "local" nor a URL, no port or
    an unknown scheme (Dask's checks), a port past 65535, an IP address of numbers past 255. Else the host
    to look up, where its scheme has one (tcp, tls, ws)."""
    if address == LOCAL:
        return None
    if "://" not in address:
        raise ParameterError("cluster", f"must be 'local' or a scheduler's address such as tcp://10.0.0.5:8786; "
                                        f"got {address!r}")
    try:
        from distributed.comm import get_address_host, parse_address, parse_host_port
    except ImportError:
        raise ParameterError("cluster", "needs Dask: pip install 'mnistlab[cluster]'") from None
    try:
        get_address_host(address)  # its form, said here: in the connecting thread Dask may fail otherwise (assert)
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):  # a host and a port (Dask's other schemes have their own forms)
            host, port = parse_host_port(location)
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is not one of 1–65535")
            if re.fullmatch(r"[0-9.]+", host):
                ipaddress.ip_address(host)  # 999.1.1.1 waited out the 10 s timeout: no DNS name, and no IP address
            return host
    except ValueError as exc:  # the address itself: no port, an unknown scheme
        raise ParameterError("cluster", f"{address!r} is not a scheduler's address ({one_line(exc)})") from None
    return None


@contextmanager
def connected(address: str) -> Iterator:
    """A ``distributed.Client`` of the scheduler at ``address`` (or of a new LocalCluster for "local")."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ParameterError("cluster", "needs Dask: pip install 'mnistlab[cluster]'") from None
    if address == LOCAL:
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # a worker process importing a script that asks for a local cluster outside if __name__ == "__main__":
            # it could start none (multiprocessing's traceback, 150 lines for each worker), and the script's
            # process says why, once, below
            raise SystemExit(1)
        # one single-threaded worker process per core: the tasks' own libraries would only compete; the
        # scheduler's HTTP server (which None does not turn off) on a free port of this machine alone, not 8787
        # (taken: a warning)
        with contextlib.ExitStack() as started:
            with _ctrl_c_held():
                try:
                    local = started.enter_context(LocalCluster(
                        n_workers=usable_cores(), threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL))
                except RuntimeError as exc:  # "Nanny failed to start.": its worker processes ended as they began
                    raise MnistlabError(f"cannot start a local Dask cluster ({_start_failure(exc)})") from None
            # a Ctrl-C pressed meanwhile is raised here, and the cluster stopped as the stack unwinds
            yield started.enter_context(Client(local))
        return
    host = _check_form(address)
    try:
        if host is not None:  # a host no one knows, said at once, not as 10 s of trying
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        client = _client(Client, address)
    except socket.gaierror as exc:
        raise MnistlabError(f"cannot reach the Dask scheduler at {address}: its host is not known "
                            f"({exc.strerror})") from None
    except MemoryError:  # a web server's answer, read as a Dask frame's length, asks for exabytes
        raise MnistlabError(f"cannot reach the Dask scheduler at {address}: what answers there speaks another "
                            "protocol") from None
    except Exception as exc:  # noqa: BLE001 - refused, timed out, TLS without its settings, UCX not installed …
        raise MnistlabError(f"cannot reach the Dask scheduler at {address}: {one_line(exc)}{_why(exc)}") from None
    # a lost scheduler is said once, below, not in Dask's log lines: closing the client logs it too
    with _quiet("distributed"), client:
        yield client


def _start_failure(exc: BaseException) -> str:
    """Why a LocalCluster did not start: the first cause its error carries (a module a worker could not import,
    say); where it carries none, the likeliest, a script that asks for a cluster outside
    ``if __name__ == "__main__":``, whose worker processes, importing it again, end as they begin."""
    # not Dask's own "failed to start" or "Status.starting"
    if cause := next((c for c in _causes(exc) if not isinstance(c, (RuntimeError, AssertionError))), None):
        return f"{one_line(exc)} {type(cause).__name__}: {one_line(cause)}"
    return (f"{one_line(exc)}; from a script, call it under if __name__ == \"__main__\": (its worker processes "
            "import the script again)")


def _why(exc: BaseException) -> str:
    """What Dask's "Timed out trying to connect" was timed out by, where its causes say (" (Connection
    refused)"): the system's error of the last try; else ""."""
    cause = next((c for c in _causes(exc) if isinstance(c, OSError) and c.errno is not None and c.strerror), None)
    return "" if cause is None or cause.strerror in str(exc) else f" ({cause.strerror})"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions ``exc`` was raised from or during, nearest first (20 at most: a chain, not a cycle)."""
    cause = exc.__cause__ or exc.__context__
    for _ in range(20):
        if cause is None:
            return
        yield cause
        cause = cause.__cause__ or cause.__context__


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl-C held back (blocked, not lost) while child processes start: they inherit the block and never
    see it (the terminal sends it to every process of the group, and the local cluster's workers printed
    tracebacks of their own), while this process gets it once the block ends, and stops them as it unwinds.
    (Only the main thread receives it; elsewhere nothing changes.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _client(Client, address: str):  # noqa: N803 - distributed's class, imported by the caller
    """``Client(address)``, or TimeoutError where no scheduler has answered in CONNECT_SECONDS: Dask's own
    timeout leaves out the handshake, and a server that takes the connection and says nothing held it for ever."""
    outcome: list = []
    lock, given_up = threading.Lock(), threading.Event()

    def connect():
        try:
            client = Client(address, timeout=CONNECT_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)
            return
        with lock:
            if not given_up.is_set():
                outcome.append(client)
                return
        client.close()  # connected after the caller had given up: it would stay Dask's default client

    thread = threading.Thread(target=connect, daemon=True)  # one that never returns is left behind
    thread.start()
    thread.join(CONNECT_SECONDS + 5)
    with lock:
        if not outcome:
            given_up.set()
            raise TimeoutError(f"nothing that speaks Dask answered in {CONNECT_SECONDS + 5} s")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """``logger`` and its children (``distributed.client`` has a level of its own) silent but for the critical."""
    logs = [logging.getLogger(name) for name in [logger, *logging.root.manager.loggerDict]
            if name == logger or name.startswith(logger + ".")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


def run_tasks(address: str, task: Callable, arguments: Sequence[tuple], progress: FitProgress = SILENT
              ) -> Iterator[tuple[int, object]]:
    """``task(*arguments[i])`` for each i on the cluster; yields ``(i, result)`` as each finishes, where a
    task that raised gives its exception as the result. Each i comes at most once: a scheduler lost raises
    SchedulerLostError in place of the tasks left. A scheduler without workers is said on ``progress`` (the
    tasks wait for one to join)."""
    from distributed import KilledWorker, as_completed

    with connected(address) as client, _workers_watched(client, address, progress):
        futures = {client.submit(_single_threaded, task, *args, pure=False, retries=0): i
                   for i, args in enumerate(arguments)}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # noqa: BLE001 (a task's own failure, reported with the rest going on)
                if client.status != "running":  # the scheduler is gone: every task left fails the same way
                    # not Dask's own words, which were the task's key ("_single_threaded-91b998dc-…") and "cancelled
                    # for reason: scheduler-connection-lost", said again in every failed point's row
                    raise SchedulerLostError(f"lost the Dask scheduler at {address} (it stopped, or the network "
                                             "to it failed)") from None
                if isinstance(exc, KilledWorker):  # the task's own doing, most likely: memory it could not have
                    exc = MnistlabError(f"the workers running it died ({one_line(exc)}): out of memory?")
                yield futures[future], exc


@contextmanager
def _workers_watched(client, address: str, progress: FitProgress) -> Iterator[None]:
    """Say on ``progress`` whenever the cluster has no worker, at the start or when its last one has gone:
    Dask waits for one to join without a word."""
    done = threading.Event()

    def watch():
        waiting = False
        while True:
            try:
                empty = not client.scheduler_info()["workers"]
            except Exception:  # noqa: BLE001 - the scheduler gone: run_tasks says so
                return
            if empty and not waiting:
                progress.log(f"waiting for a Dask worker to join the scheduler at {address} "
                             f"(start one with: dask worker {address})")
            waiting = empty
            if done.wait(WATCH_SECONDS):
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(WATCH_SECONDS)


def _single_threaded(task: Callable, *args):
    """Run ``task`` in a worker with BLAS and PyTorch on one thread: the worker is one core's share."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return task(*args)

"""One writer per run directory: an advisory lock that names its holder.

Two `reidbench run` on one `--out DIR` would each pay for every LVLM answer
the other is paying for. The lock is an OS file lock (`filelock`: `flock` on
Linux/macOS, `LockFileEx`/`msvcrt` on Windows) on `DIR/run.lock`, so the OS
drops it the moment its holder dies, SIGKILL included: a lock is never left
stale. Who holds it (PID, host, start time, command) is written next to it in
`DIR/run.lock.json` and removed on release; finding that file on taking the
lock therefore means the previous holder died, and the takeover is said
aloud. A second run while the holder lives is refused (exit 2) naming it.

Within one thread of one process the lock is re-entrant, so `reidbench demo`
can hold it while it writes its data and `run_experiment` takes it again.
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from reidbench.errors import UserError
from reidbench.files import write_json_atomic
from reidbench.progress import Log

LOCK_NAME = "run.lock"
HOLDER_NAME = "run.lock.json"
_HOLDER_WAIT_S = 1.0  # how long a refused run waits for the holder to finish writing its name

_held: dict[tuple[str, int], list[Any]] = {}  # (dir, thread id) -> [FileLock, depth]
_held_guard = threading.Lock()

F = TypeVar("F", bound=Callable[..., Any])
_logger = logging.getLogger(__name__)


def holder_record() -> dict[str, Any]:
    """What a refused run prints about us: enough to find and judge the holder."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": _command(),
    }


def _command() -> str:
    if not sys.argv:
        return ""
    name = Path(sys.argv[0]).name
    if name in ("__main__.py", "reidbench"):  # `python -m reidbench` or the console script
        name = "reidbench"
    return " ".join([name, *sys.argv[1:]])


def read_holder(run_dir: Path) -> dict[str, Any] | None:
    """The holder recorded in `run_dir`, or None (no holder, or a record being written)."""
    try:
        data = json.loads((Path(run_dir) / HOLDER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(holder: dict[str, Any]) -> str:
    return (
        f"PID {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"(started {holder.get('started', '?')})"
    )


@contextmanager
def hold_run_dir(run_dir: str | os.PathLike[str], *, log: Log | None = None) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block; UserError naming the holder if another has it.

    `log` hears about a takeover from a dead holder (default: a logging warning).
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():  # the pre-flight's words for the same mistake
        raise UserError(f"{path}: --out names an existing file, not a folder; pass a folder path")
    path.mkdir(parents=True, exist_ok=True)
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is not None:  # re-entered by the thread that holds it
        try:
            yield
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    lock = _acquire(path, log or _logger.warning)
    with _held_guard:
        _held[key] = [lock, 1]
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        # The record goes first: whoever takes the lock after us must not see a "dead holder".
        (path / HOLDER_NAME).unlink(missing_ok=True)
        lock.release()


def _acquire(path: Path, log: Log) -> FileLock:
    lock = FileLock(str(path / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(_refusal(path)) from None
    except (OSError, NotImplementedError) as exc:  # a file system with no locks at all
        raise UserError(
            f"{path / LOCK_NAME}: cannot lock the run directory ({exc}); "
            "put the run directory on a local disk"
        ) from exc
    stale = read_holder(path)
    if stale is not None:
        log(
            f"{path}: taking over the run lock of {describe(stale)}, which ended without "
            "releasing it; its answers so far are in the cache and are reused"
        )
    try:
        write_json_atomic(path / HOLDER_NAME, holder_record())
    except BaseException:
        lock.release()
        raise
    return lock


def _refusal(path: Path) -> str:
    # The holder writes its record just after taking the lock: give it a moment.
    deadline = time.monotonic() + _HOLDER_WAIT_S
    holder = read_holder(path)
    while holder is None and time.monotonic() < deadline:
        time.sleep(0.05)
        holder = read_holder(path)
    who = describe(holder) if holder else "another process (its record is unreadable)"
    command = f" running `{holder['command']}`" if holder and holder.get("command") else ""
    return (
        f"{path}: run directory in use by {who}{command}; wait for it to finish or stop it, "
        "or use another --out directory"
    )


def refuse_if_held(run_dir: str | os.PathLike[str]) -> None:
    """Refuse at once (UserError naming the holder) when another process holds `run_dir`.

    A cheap early look, before a pre-flight that would probe endpoints for a run that
    cannot start; `hold_run_dir` still decides, since the holder may change in between.
    """
    path = Path(run_dir)
    if not (path / LOCK_NAME).is_file():
        return
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        if key in _held:
            return
    lock = FileLock(str(path / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(_refusal(path)) from None
    except (OSError, NotImplementedError):
        return  # hold_run_dir says what is wrong with this file system
    lock.release()


def locks_run_dir(arg: str = "out") -> Callable[[F], F]:
    """Decorate a function that writes the run directory passed as `arg` (and may take `log`).

    A decorator keeps the driver's body unchanged: the lock spans the whole call.
    """

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            with hold_run_dir(bound.arguments[arg], log=bound.arguments.get("log")):
                return fn(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return wrap

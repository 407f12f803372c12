"""Kill a child process with SIGKILL once it has done some of its work, for the
crash-and-resume tests of runs and tasks (they then check nothing is paid twice)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def cached_answers(cache: Path) -> int:
    """Rows committed to a response cache (0 before the child has created it)."""
    if not cache.exists():
        return 0
    db = sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # the child has not created the table yet
        return 0
    finally:
        db.close()


def kill_when(
    cmd: Sequence[str],
    env: Mapping[str, str],
    ready: Callable[[], bool],
    *,
    what: str,
    timeout_s: float = 120,
) -> None:
    """Start `cmd`, SIGKILL it as soon as `ready()` holds; fail if it exits or stalls first."""
    child = subprocess.Popen(
        list(cmd), env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, f"the child never {what}"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

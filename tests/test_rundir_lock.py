"""The run-directory lock: one writer per directory, the holder named, a dead holder taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from reidbench.errors import UserError
from reidbench.rundir.lock import HOLDER_NAME, hold_run_dir, locks_run_dir, read_holder

HOLD = textwrap.dedent(
    """
    import os, signal, sys
    from reidbench.rundir.lock import hold_run_dir
    with hold_run_dir(sys.argv[1]):
        print("held", flush=True)
        if sys.argv[2] == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.stdin.readline()  # hold until the parent says so
    """
)


def _holder_process(run_dir: Path, mode: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held", child.communicate()
    return child


def test_holder_record_reentry_and_release(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with hold_run_dir(run_dir):
        holder = read_holder(run_dir)
        assert holder is not None
        assert holder["pid"] == os.getpid()
        assert holder["host"] == socket.gethostname()
        assert holder["started"].endswith("Z")
        with hold_run_dir(run_dir):  # the same thread may re-enter (demo -> run_experiment)
            assert read_holder(run_dir) == holder
        assert read_holder(run_dir) == holder  # still held after the inner block
        # Another thread of the same process is another writer: refused.
        errors: list[str] = []

        def other() -> None:
            try:
                with hold_run_dir(run_dir):
                    pass
            except UserError as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1 and f"PID {os.getpid()}" in errors[0]
    assert not (run_dir / HOLDER_NAME).exists()
    with hold_run_dir(run_dir):  # free again
        pass


@pytest.mark.slow
def test_a_live_holder_in_another_process_refuses_us_by_name(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = _holder_process(run_dir, "hold")
    try:
        with pytest.raises(UserError) as err, hold_run_dir(run_dir):
            pass
        message = str(err.value)
        assert f"PID {child.pid} on host {socket.gethostname()}" in message
        assert "in use" in message and "--out" in message and "\n" not in message
        assert read_holder(run_dir)["pid"] == child.pid  # the refusal changed nothing
    finally:
        child.communicate("go\n", timeout=30)
    assert child.returncode == 0
    with hold_run_dir(run_dir):  # released by its holder
        pass


@pytest.mark.slow
def test_a_sigkilled_holder_is_taken_over_and_said_so(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = _holder_process(run_dir, "die")
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert read_holder(run_dir)["pid"] == child.pid  # its record outlived it
    heard: list[str] = []
    with hold_run_dir(run_dir, log=heard.append):
        assert read_holder(run_dir)["pid"] == os.getpid()
    assert len(heard) == 1
    assert f"taking over the run lock of PID {child.pid}" in heard[0]
    assert "ended without releasing it" in heard[0]


def test_decorator_takes_the_lock_for_the_call(tmp_path: Path) -> None:
    seen: list[object] = []

    @locks_run_dir("out")
    def write(cfg: object, out: Path, *, log=None) -> int:
        seen.append(json.loads((out / HOLDER_NAME).read_text())["pid"])
        return 7

    assert write(None, tmp_path / "d") == 7
    assert seen == [os.getpid()]
    assert not (tmp_path / "d" / HOLDER_NAME).exists()

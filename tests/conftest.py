"""Shared fixtures. `run_cli` calls the real console-script entry point in-process."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reidbench.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run `reidbench ARGS...` through `main` (exit codes and stderr exactly as users see them)."""

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code=code, out=captured.out, err=captured.err)

    return _run


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """A run directory made once per session by `reidbench demo --no-lvlm` (offline),
    for the slow tests that check the demo's report and exports."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("demo-session") / "demo"
    subprocess.run(
        [sys.executable, "-m", "reidbench", "demo", "--out", str(out), "--no-lvlm"],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return out

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
    """A run of the demo's own config (`reidbench config show demo`: both offline
    embedders, logistic fusion, retrieval) on a smaller synthetic set, made once per
    session through the CLI, for the slow tests of the demo's report and exports."""
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("demo-session")
    cli = [sys.executable, "-m", "reidbench"]

    def run(*args: str) -> str:
        done = subprocess.run([*cli, *args], check=True, capture_output=True, text=True)
        return done.stdout

    run("synth", str(base / "data"), "--train-ids", "10", "--test-ids", "30", "--seed", "0")
    (base / "demo.toml").write_text(run("config", "show", "demo"))
    out = base / "run"
    run(
        "run",
        str(base / "demo.toml"),
        "--out",
        str(out),
        "--set",
        f"dataset.root={base / 'data'}",
        "--set",
        "pairs.positives=80",
        "--set",
        "pairs.negatives=80",
        "--set",
        "tasks.1.items=40",  # the choice task: the small set has 94 matchable queries
    )
    return out

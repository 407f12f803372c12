"""Hostile inputs, through the CLI as a user meets them (in-process `main`; subprocess cases are
marked slow). Each case asserts the exit code, exactly one `error:` line (the last one), no
traceback, and that nothing already made was lost or half-written."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from reidbench import __version__
from reidbench.datasets.synthetic import generate


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "data"
    generate(root, train_ids=2, test_ids=6, seed=9)
    return root


def write_config(
    path: Path, data: Path, *, name: str = "hostile", extra: str = "", n: int = 5
) -> Path:
    path.write_text(
        f'name = "{name}"\nbootstrap = 20\n\n[dataset]\nroot = "{data}"\n\n'
        f"[pairs]\npositives = {n}\nnegatives = {n}\nseed = 1\n\n"
        '[[systems]]\nname = "handcrafted"\ntype = "reid"\nmodel = "handcrafted"\n\n'
        '[[systems]]\nname = "colour"\ntype = "reid"\nmodel = "handcrafted"\nbatch_size = 8\n'
        + extra
    )
    return path


@pytest.fixture(scope="module")
def finished_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run directory (two embedder systems); tests copy it before changing it."""
    from reidbench.config import load_config
    from reidbench.experiment import run_experiment

    base = tmp_path_factory.mktemp("finished")
    out = base / "run"
    run_experiment(load_config(write_config(base / "c.toml", data, n=14)), out)
    return out


@pytest.fixture(scope="module")
def large_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with enough pairs for logistic fusion on the identity-disjoint halves."""
    from reidbench.config import load_config
    from reidbench.experiment import run_experiment

    base = tmp_path_factory.mktemp("large")
    out = base / "run"
    run_experiment(load_config(write_config(base / "c.toml", data, n=80)), out)
    return out


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


def refused(result, code: int = 2) -> str:
    """The one error line of a refused command (asserting the contract)."""
    assert result.code == code, (result.code, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    assert result.err.rstrip().endswith(lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# -- already handled: they must stay that way ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "{tmp}/missing.toml"], "config file not found"),
        (["run", "{tmp}"], "is a folder, not a config file"),
        (["report", "{tmp}"], "no scores.parquet"),
        (["fuse", "{tmp}", "--systems", "a,b"], "no scores.parquet"),
        (
            ["pairs", "{data}", "--out", "{tmp}/p.txt", "--positives", "1", "--negatives", "1"],
            ".parquet or .csv",
        ),
        (["retrieval", "{data}", "--model", "no-such-model"], "unknown model"),
        (["dataset", "info", "{tmp}/nowhere"], "nowhere"),
        (["run"], "Missing argument"),
    ],
)
@pytest.mark.slow
def test_already_handled_cases(run_cli, data, tmp_path, args, needle) -> None:
    line = refused(run_cli(*[a.format(tmp=tmp_path, data=data) for a in args]))
    assert needle in line


@pytest.mark.slow
def test_bad_toml_and_bad_field(run_cli, data, tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    assert "not valid TOML" in refused(run_cli("run", bad))
    typo = write_config(tmp_path / "typo.toml", data, extra="\n[pairs2]\nx = 1\n")
    assert "pairs2" in refused(run_cli("run", typo, "--out", tmp_path / "r"))


# -- item 3: OS and input errors are user errors ------------------------------------------


def test_run_out_is_an_existing_file(run_cli, data, tmp_path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    line = refused(run_cli("run", write_config(tmp_path / "c.toml", data), "--out", target))
    assert str(target) in line and "existing file" in line
    assert target.read_text() == "keep me"


def test_read_only_output_folder_is_refused_before_work(run_cli, data, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: False if Path(p) == ro else real_access(p, mode, **kw)
    )
    cfg = write_config(tmp_path / "c.toml", data)
    line = refused(run_cli("run", cfg, "--out", ro / "run"))
    assert str(ro) in line and "not writable" in line
    line = refused(run_cli("demo", "--out", ro / "demo", "--no-lvlm"))
    assert "not writable" in line
    assert list(ro.iterdir()) == []


def _raise_on(monkeypatch, method: str, code: int, when) -> None:
    real = getattr(Path, method)

    def fake(self, *args, **kwargs):
        if when(self):
            raise OSError(code, os.strerror(code), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, fake)


@pytest.mark.slow
def test_disk_full_while_writing_the_report(run_cli, run_copy, monkeypatch) -> None:
    before = (run_copy / "report.html").read_bytes()
    _raise_on(monkeypatch, "write_text", errno.ENOSPC, lambda p: "report.html" in p.name)
    line = refused(run_cli("report", run_copy))
    assert "report.html" in line and "no space left" in line
    assert (run_copy / "report.html").read_bytes() == before  # the old report is intact
    assert not [p for p in run_copy.iterdir() if p.name.endswith(".tmp")]  # no partial file


@pytest.mark.slow
def test_read_only_file_system_for_report_and_synth(run_cli, run_copy, tmp_path, monkeypatch):
    _raise_on(monkeypatch, "write_text", errno.EROFS, lambda p: True)
    assert "read-only file system" in refused(run_cli("report", run_copy))
    monkeypatch.undo()
    _raise_on(monkeypatch, "mkdir", errno.EROFS, lambda p: "synth-out" in str(p))
    line = refused(run_cli("synth", tmp_path / "synth-out", "--test-ids", "2"))
    assert "synth-out" in line and "read-only file system" in line


def test_disk_full_in_the_cache_database(run_cli, data, tmp_path, monkeypatch) -> None:
    import sqlite3

    from reidbench.models import FeatureCache

    def full(*_a, **_k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(FeatureCache, "__init__", full)
    line = refused(run_cli("run", write_config(tmp_path / "c.toml", data), "--out", tmp_path / "r"))
    assert "no space left" in line


def _copy_data(data: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(data, root)
    return root


def test_image_too_large_is_one_limit_in_every_command(run_cli, data, tmp_path, monkeypatch):
    monkeypatch.setenv("REIDBENCH_MAX_IMAGE_PIXELS", "1000")  # every crop is larger
    line = refused(run_cli("retrieval", data, "--model", "handcrafted"))
    assert "image too large" in line and "REIDBENCH_MAX_IMAGE_PIXELS" in line
    assert ".jpg" in line  # names the file
    cfg = write_config(tmp_path / "c.toml", data)
    line = refused(run_cli("run", cfg, "--out", tmp_path / "r"))
    assert "image too large" in line
    result = run_cli("dataset", "info", data, "--verify")
    assert "image too large" in result.out + result.err
    monkeypatch.setenv("REIDBENCH_MAX_IMAGE_PIXELS", "lots")
    assert "REIDBENCH_MAX_IMAGE_PIXELS" in refused(run_cli("retrieval", data, "-m", "handcrafted"))


def test_zero_byte_image_names_the_file(run_cli, data, tmp_path) -> None:
    root = _copy_data(data, tmp_path)
    victim = sorted((root / "query").glob("*.jpg"))[0]
    victim.write_bytes(b"")
    line = refused(run_cli("retrieval", root, "--model", "handcrafted", "--no-cache"))
    assert victim.name in line and "0 bytes" in line and "BytesIO" not in line


def test_contact_sheet_folder(run_cli, tmp_path) -> None:
    folder = tmp_path / "sheet"
    folder.mkdir()
    line = refused(run_cli("synth", tmp_path / "s", "--contact-sheet", folder))
    assert "is a folder" in line
    assert not (tmp_path / "s").exists()  # refused before any image was made


# -- item 5: no silent overwrite, no escape -------------------------------------------------


def test_pairs_out_holding_another_set_needs_force(run_cli, data, tmp_path) -> None:
    out = tmp_path / "pairs.parquet"
    assert run_cli("pairs", data, "--out", out, "--positives", "6", "--negatives", "6").code == 0
    first = out.read_bytes()
    again = run_cli("pairs", data, "--out", out, "--positives", "6", "--negatives", "6")
    assert again.code == 0  # the same set: nothing to lose
    line = refused(run_cli("pairs", data, "--out", out, "--positives", "2", "--negatives", "2"))
    assert "--force" in line and str(out) in line
    assert out.read_bytes() == first
    forced = run_cli("pairs", data, "--out", out, "--positives", "2", "--negatives", "2", "--force")
    assert (
        forced.code == 0
        and pq.read_table(out).num_rows < pq.read_table(tmp_path / "pairs.parquet").num_rows + 100
    )
    assert out.read_bytes() != first


@pytest.mark.slow
def test_fuse_duplicates_overwrites_and_remove(run_cli, large_run, tmp_path) -> None:
    run_copy = tmp_path / "run"
    shutil.copytree(large_run, run_copy)
    line = refused(run_cli("fuse", run_copy, "--systems", "handcrafted,handcrafted"))
    assert "listed twice" in line
    # --no-select: this run's identity-disjoint calibration half is too small for the
    # cross-validated input selection.
    fit = ("fuse", run_copy, "--systems", "handcrafted,colour", "--no-select", "--cs", "1.0")
    assert run_cli(*fit).code == 0
    record = next((run_copy / "fusion").glob("*.json"))
    fitted = record.read_bytes()
    # the same settings again is a refit, not an overwrite
    assert run_cli(*fit).code == 0
    line = refused(run_cli(*fit[:-1], "0.5"))
    assert "--force" in line
    assert json.loads(record.read_bytes())["settings"] == json.loads(fitted)["settings"]
    forced = run_cli(*fit[:-1], "0.5", "--force")
    assert forced.code == 0, forced.err
    assert json.loads(record.read_bytes())["settings"] != json.loads(fitted)["settings"]
    name = json.loads(record.read_text())["name"]
    removed = run_cli("fuse", run_copy, "--remove", name)
    assert removed.code == 0, removed.err
    assert not list((run_copy / "fusion").glob("*.json"))
    assert name not in json.loads((run_copy / "metrics.json").read_text())["systems"]
    assert "no fused system named" in refused(run_cli("fuse", run_copy, "--remove", name))


def test_run_name_cannot_escape_runs(run_cli, data, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path / "c.toml", data, name="../../bad/escaped")
    line = refused(run_cli("run", cfg))
    assert "outside runs/" in line
    assert not (tmp_path.parent / "bad").exists() and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_missing_image_on_resume_is_named_and_relink_keeps_the_run(
    run_cli, data, run_copy, tmp_path
) -> None:
    cfg = write_config(tmp_path / "c.toml", data, n=14)  # the run's own config
    used = pq.read_table(run_copy / "pairs.parquet").column("path_a").to_pylist()[0]
    damaged = _copy_data(data, tmp_path)
    (damaged / used).unlink()
    kept = snapshot(run_copy)
    line = refused(run_cli("run", cfg, "--out", run_copy, "--relink", damaged))
    assert str(damaged / used) in line and "--relink" in line and "kept" in line
    assert snapshot(run_copy) == kept  # nothing in the run directory changed
    # the dataset moved and an unrelated image went away: refused unless --relink
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    pair_images = set(pq.read_table(run_copy / "pairs.parquet").column("path_a").to_pylist())
    pair_images |= set(pq.read_table(run_copy / "pairs.parquet").column("path_b").to_pylist())
    spare = next(
        p
        for p in sorted((moved / "query").glob("*.jpg"))
        if str(p.relative_to(moved)) not in pair_images
    )
    spare.unlink()
    moved_cfg = write_config(tmp_path / "m.toml", moved, n=14)
    line = refused(run_cli("run", moved_cfg, "--out", run_copy))
    assert "--relink" in line and "image list changed" in line
    ok = run_cli("run", cfg, "--out", run_copy, "--relink", moved)
    assert ok.code == 0, ok.err
    assert "relinked" in ok.err and "handcrafted: already complete" in ok.err
    again = run_cli("run", moved_cfg, "--out", run_copy)  # relinked for good
    assert again.code == 0, again.err


def test_failed_run_leaves_no_empty_folder(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    not_a_dataset = tmp_path / "empty-data"
    not_a_dataset.mkdir()
    cfg = write_config(tmp_path / "c.toml", not_a_dataset, name="paper")
    refused(run_cli("run", cfg))
    assert not (tmp_path / "runs" / "paper").exists()


# -- item 6: the small points ---------------------------------------------------------------


def test_version_and_full_width_help(run_cli) -> None:
    result = run_cli("--version")
    assert result.code == 0 and result.out.strip() == f"reidbench {__version__}"
    helped = run_cli("fuse", "--help")
    assert "--budget-usd-per-1k" in helped.out and "…" not in helped.out


def test_progress_lines_outside_a_terminal_are_whole(run_cli, data, tmp_path) -> None:
    result = run_cli("retrieval", data, "--model", "handcrafted", "--rerank", "--no-cache")
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert any(line.startswith("features handcrafted: ") and "(100%)" in line for line in lines)
    [rerank] = [line for line in lines if line.startswith("re-ranking: 4/4")]
    assert "step/s" in rerank and "query/s" not in rerank and "…" not in result.err


def test_handcrafted_refuses_network_options(run_cli, data) -> None:
    for extra in (["--precision", "fp8"], ["--device", "cuda"]):
        line = refused(run_cli("retrieval", data, "--model", "handcrafted", *extra))
        assert "handcrafted" in line


def test_ctrl_c_in_retrieval_says_what_is_kept(run_cli, data, monkeypatch) -> None:
    import reidbench.retrieval_run

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(reidbench.retrieval_run, "evaluate_embedder", interrupted)
    result = run_cli("retrieval", data, "--model", "handcrafted", "--no-cache")
    assert result.code == 130 and "interrupted:" in result.err and "Traceback" not in result.err


# -- through a real process -----------------------------------------------------------------


@pytest.mark.slow
def test_console_script_exit_codes(data, tmp_path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    cfg = write_config(tmp_path / "c.toml", data)
    proc = subprocess.run(
        [sys.executable, "-m", "reidbench", "run", str(cfg), "--out", str(taken)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")
    version = subprocess.run(
        [sys.executable, "-m", "reidbench", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and __version__ in version.stdout


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_limit_is_pillows_knob_too(tmp_path, monkeypatch) -> None:
    from reidbench.errors import UserError
    from reidbench.judges.images import load_crop

    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setenv("REIDBENCH_MAX_IMAGE_PIXELS", "9999")
    with pytest.raises(UserError, match=r"big\.png: image too large"):
        load_crop(path)
    monkeypatch.setenv("REIDBENCH_MAX_IMAGE_PIXELS", "10000")
    assert load_crop(path).size == (100, 100)

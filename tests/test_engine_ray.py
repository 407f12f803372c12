"""The Ray engine on a real local Ray instance: same features, same metrics, same cache.

One Ray instance (`ray.init(num_cpus=2)`) serves the whole module; its temp
folder is private, so teardown can check that every Ray process it started is
gone. The CLI subprocess test starts and stops its own instance the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.optional import importorskip

ray = importorskip("ray")
pytestmark = pytest.mark.slow  # a real local Ray instance per module (and per CLI test)

from reidbench.datasets import load_dataset  # noqa: E402
from reidbench.engine import session  # noqa: E402
from reidbench.engine.ray_engine import RayEngine  # noqa: E402
from reidbench.errors import UserError  # noqa: E402
from reidbench.metrics import evaluate_features  # noqa: E402
from reidbench.models import FeatureCache, extract_features, load_embedder  # noqa: E402
from reidbench.models.base import Embedder  # noqa: E402
from reidbench.retrieval_run import evaluate_embedder  # noqa: E402
from tests.test_models_fixtures import market_tree  # noqa: E402


def _ray_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (a Ray temp folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd:
            found.append(cmd)
    return found


def _wait_gone(marker: str) -> list[str]:
    # Ray stops its daemons asynchronously after shutdown; poll until they exit.
    import time

    for _ in range(100):
        left = _ray_processes(marker)
        if not left:
            return []
        time.sleep(0.2)
    return _ray_processes(marker)


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    temp = tempfile.mkdtemp(prefix="rbray", dir="/tmp")  # short: Ray's socket paths live here
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        left = _wait_gone(temp)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes left after shutdown: {left}"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return market_tree(tmp_path_factory.mktemp("market"), test_ids=6, cameras=3)


def _paths(root: Path) -> list[Path]:
    ds = load_dataset(root)
    return [ds.abspath(r) for r in ds.query + ds.gallery]


class _Bar:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.starts = 0

    def start(self, description: str, total: int | None) -> None:
        self.total, self.starts = total, self.starts + 1

    def advance(self, n: int = 1, **fields: object) -> None:
        self.done += n

    def finish(self) -> None:
        pass


def test_features_equal_local_path_with_duplicates(ray_instance, market: Path, tmp_path: Path):
    paths = _paths(market)
    paths = [*paths, paths[0], paths[3]]  # identical bytes are embedded once, rows filled twice
    emb = load_embedder("handcrafted")
    local = extract_features(emb, paths, batch_size=8)
    bar, stats = _Bar(), {}
    with session("ray"):
        remote = extract_features(emb, paths, batch_size=8, progress=bar, stats=stats)
    np.testing.assert_array_equal(remote, local)
    assert stats == {
        "images": len(paths),
        "unique": len(paths) - 2,
        "cached": 0,
        "computed": len(paths) - 2,
    }
    assert (bar.starts, bar.total, bar.done) == (1, len(paths), len(paths))


def test_network_features_match_local_path(ray_instance, market: Path):
    paths = _paths(market)[:24]
    emb = load_embedder("efficientnet-lite0", precision="fp32", device="cpu")
    local = extract_features(emb, paths, batch_size=8)
    with session("ray"):
        remote = extract_features(emb, paths, batch_size=8)
    # Ray Data may cut batches differently; per-row results agree to float32 rounding.
    np.testing.assert_allclose(remote, local, rtol=0, atol=2e-6)
    assert np.all(np.sum(remote * local, axis=1) >= 0.99999)


def test_cache_is_shared_across_engines(ray_instance, market: Path, tmp_path: Path):
    paths = _paths(market)
    emb = load_embedder("handcrafted")
    first, second = {}, {}
    with FeatureCache(tmp_path / "c") as cache:
        with session("ray"):
            a = extract_features(emb, paths, cache=cache, stats=first)
        b = extract_features(emb, paths, cache=cache, stats=second)
        assert cache.count(emb.fingerprint) == first["unique"]
    assert first["computed"] == first["unique"] and first["cached"] == 0
    assert second["computed"] == 0 and second["cached"] == second["unique"]
    np.testing.assert_array_equal(a, b)
    # and the other way round: a local run's cache serves the Ray engine
    local_first, ray_second = {}, {}
    with FeatureCache(tmp_path / "d") as cache:
        extract_features(emb, paths[:10], cache=cache, stats=local_first)
        with session("ray"):
            c = extract_features(emb, paths, cache=cache, stats=ray_second)
    assert ray_second["cached"] == local_first["unique"]
    assert ray_second["computed"] == ray_second["unique"] - local_first["unique"]
    np.testing.assert_array_equal(c, a)


class _DiesOnce(Embedder):
    """handcrafted, but the actor process dies at its first model call (a marker file
    makes the restarted actor go on): Ray must restart it and retry the batch."""

    def __init__(self, marker: Path) -> None:
        self.inner = load_embedder("handcrafted")
        self.name, self.dim, self.info = self.inner.name, self.inner.dim, self.inner.info
        self.marker = str(marker)

    def describe(self):
        return self.inner.describe()

    def prepare(self, image):
        return self.inner.prepare(image)

    def embed_prepared(self, batch):
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)  # a killed actor: no exception, no cleanup
        return self.inner.embed_prepared(batch)


class _LedgerCache(FeatureCache):
    """Records every content hash the driver writes."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.written: list[str] = []

    def put_many(self, fingerprint, rows, description=None):
        self.written.extend(rows)
        super().put_many(fingerprint, rows, description)


def test_killed_actor_is_retried_and_nothing_is_written_twice(ray_instance, market, tmp_path):
    # The worker must unpickle _DiesOnce: ship this module by value, not by import path.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    paths = _paths(market)
    marker = tmp_path / "died"
    stats: dict[str, int] = {}
    with _LedgerCache(tmp_path / "c") as cache, session("ray"):
        feats = extract_features(_DiesOnce(marker), paths, batch_size=8, cache=cache, stats=stats)
        written = list(cache.written)
        stored = cache.count()
    assert marker.exists()  # the actor really died once
    np.testing.assert_array_equal(feats, extract_features(load_embedder("handcrafted"), paths))
    assert len(written) == len(set(written)) == stats["unique"] == stored


def test_broken_image_is_a_user_error_naming_the_file(ray_instance, market, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with session("ray"), pytest.raises(UserError, match=r"broken\.jpg: not a readable image"):
        extract_features(load_embedder("handcrafted"), [*_paths(market)[:3], bad])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_retrieval_blocks_on_ray_equal_local_evaluator(ray_instance, metric):
    rng = np.random.default_rng(3)
    nq, ng, d = 97, 211, 16
    qf = rng.normal(size=(nq, d)).astype(np.float32)
    gf = rng.normal(size=(ng, d)).astype(np.float32)
    gf[50:60] = gf[40:50]  # exact ties in distance
    q_pids, g_pids = rng.integers(0, 12, nq), rng.integers(0, 12, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    ref = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, metric=metric, chunk_size=10)
    engine = RayEngine()
    got = engine.evaluate_features(
        qf, gf, q_pids, g_pids, q_cams, g_cams, metric=metric, chunk_size=10
    )
    engine.close()  # leaves the module's instance running (it did not start it)
    assert ray.is_initialized()
    np.testing.assert_allclose(got.cmc, ref.cmc, rtol=0, atol=1e-9)
    assert abs(got.mAP - ref.mAP) <= 1e-9 and abs(got.mINP - ref.mINP) <= 1e-9
    np.testing.assert_array_equal(got.valid_queries, ref.valid_queries)
    np.testing.assert_array_equal(got.first_match_rank, ref.first_match_rank)
    np.testing.assert_allclose(got.all_AP, ref.all_AP, rtol=0, atol=1e-12)


def test_evaluate_embedder_on_ray_equals_local(ray_instance, market: Path):
    emb = load_embedder("handcrafted")
    ds = load_dataset(market)
    local = evaluate_embedder(emb, ds).summary()
    with session("ray"):
        remote = evaluate_embedder(emb, ds).summary()
    assert remote == local


def test_cli_engine_options(ray_instance, run_cli, market: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    args = ["retrieval", market, "--model", "handcrafted", "--json", "--cache", cache]
    local = run_cli(*args, "--no-cache")
    remote = run_cli(*args, "--engine", "ray")
    assert local.code == remote.code == 0, remote.err
    a, b = json.loads(local.out), json.loads(remote.out)
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP", "cmc", "num_valid_queries"):
        assert a[key] == b[key], key
    assert b["features"]["computed"] == b["features"]["unique"]
    bad = run_cli(*args, "--engine", "spark")
    assert bad.code == 2 and "unknown engine 'spark'" in bad.err
    bad = run_cli(*args, "--ray-address", "auto")
    assert bad.code == 2 and "add --engine ray" in bad.err


def test_engine_table_in_the_config(tmp_path: Path):
    from reidbench.config import load_config

    cfg = tmp_path / "c.toml"
    base = '[dataset]\nroot = "x"\n[[systems]]\nname = "h"\ntype = "reid"\nmodel = "handcrafted"\n'
    cfg.write_text(base + '[engine]\nkind = "ray"\naddress = "ray://head:10001"\n')
    loaded = load_config(cfg)
    assert (loaded.engine.kind, loaded.engine.address) == ("ray", "ray://head:10001")
    cfg.write_text(base)
    assert load_config(cfg).engine.kind == "local"
    cfg.write_text(base + '[engine]\nkind = "dask"\n')
    with pytest.raises(UserError, match=r"engine\.kind"):
        load_config(cfg)


def test_cli_subprocess_same_numbers_and_no_ray_process_left(market: Path, tmp_path: Path):
    """`reidbench retrieval ... --engine ray` as users run it: its own Ray instance, stopped."""
    temp = tempfile.mkdtemp(prefix="rbcli", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": temp, "REIDBENCH_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "reidbench", "retrieval", str(market), "--model", "handcrafted"]
    ray_out = subprocess.run(
        [*cmd, "--engine", "ray"], env=env, capture_output=True, text=True, timeout=240
    )
    assert ray_out.returncode == 0, ray_out.stderr
    local_out = subprocess.run(
        [*cmd, "--no-cache"], env=env, capture_output=True, text=True, timeout=240
    )
    assert local_out.returncode == 0, local_out.stderr

    def numbers(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if ln.strip().startswith(("rank-", "mAP", "mINP"))]

    assert len(numbers(ray_out.stdout)) == 5
    assert numbers(ray_out.stdout) == numbers(local_out.stdout)
    left = _wait_gone(temp)
    shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"Ray processes left after the command: {left}"


def _experiment_config(path: Path, data: Path, engine: str, hard: bool = False) -> Path:
    path.write_text(
        f'name = "ray-test"\nbootstrap = 20\nretrieval = true\n'
        f'[dataset]\nroot = "{data}"\n'
        f"[pairs]\npositives = 10\nnegatives = 10\nseed = 2\n"
        + ('hard_negatives = "handcrafted"\n' if hard else "")
        + '[[systems]]\nname = "h"\ntype = "reid"\nmodel = "handcrafted"\nbatch_size = 8\n'
        + f'[engine]\nkind = "{engine}"\n'
    )
    return path


def test_experiment_with_engine_table_equals_local_run(ray_instance, market: Path, tmp_path):
    """`[engine] kind = "ray"`: same pairs (hard negatives mined on Ray), same scores rows,
    same retrieval numbers as a local run; the run's feature cache is written by the driver."""
    import pyarrow.parquet as pq

    from reidbench.config import load_config
    from reidbench.experiment import run_experiment

    runs = {}
    for engine in ("local", "ray"):
        cfg = load_config(_experiment_config(tmp_path / f"{engine}.toml", market, engine, True))
        runs[engine] = run_experiment(cfg, tmp_path / engine, write_outputs=False)
    for name in ("pairs.parquet", "scores.parquet"):
        a = pq.read_table(runs["local"].out / name)
        b = pq.read_table(runs["ray"].out / name)
        assert a.drop_columns([c for c in a.column_names if c == "latency_s"]).equals(
            b.drop_columns([c for c in b.column_names if c == "latency_s"])
        ), name
    ret_a = json.loads(runs["local"].retrieval.read_text())["h"]
    ret_b = json.loads(runs["ray"].retrieval.read_text())["h"]
    assert ret_a == ret_b


def test_pairs_cli_mines_hard_negatives_on_ray(ray_instance, run_cli, market: Path, tmp_path):
    args = ["pairs", market, "--positives", "6", "--negatives", "6", "--hard-negatives"]
    common = ["handcrafted", "--cache", tmp_path / "cache"]
    local = run_cli(*args, *common, "--out", tmp_path / "a.parquet")
    remote = run_cli(*args, *common, "--out", tmp_path / "b.parquet", "--engine", "ray")
    assert local.code == remote.code == 0, remote.err
    hashes = [ln for out in (local.out, remote.out) for ln in out.splitlines() if "hash" in ln]
    assert len(hashes) == 2 and hashes[0] == hashes[1]


# --------------------------------------------------------------------------- local LVLMs


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    importorskip("transformers")
    from tests.test_judges_hf import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    import pyarrow as pa
    from PIL import Image

    root = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(root / f"{i}.png")
    pairs = pa.table(
        {
            "pair_id": [0, 1, 2],
            "path_a": ["0.png", "1.png", "2.png"],
            "path_b": ["3.png", "4.png", "5.png"],
        }
    )
    return root, pairs


def _hf_system(model: Path, **extra: Any) -> Any:
    from reidbench.config import LVLMSystemConfig

    return LVLMSystemConfig.model_validate(
        {
            "name": "tiny",
            "type": "lvlm",
            "provider": "hf",
            "model": str(model),
            "max_tokens": 6,
            "image_size": 32,
            "concurrency": 2,
            "retry_base_s": 0.01,
            "retry_max_s": 0.05,
            "extra": {"device": "cpu", "local_files_only": True, **extra},
        }
    )


def _rows(table: Any) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "latency_s"} for r in table.to_pylist()]


def test_hf_judge_in_a_ray_actor_pool_equals_local(ray_instance, tiny_llava, crops, tmp_path):
    from reidbench.judges import judge_pairs

    root, pairs = crops
    local = judge_pairs(_hf_system(tiny_llava), pairs, root, cache_path=tmp_path / "a", environ={})
    with session("ray"):
        remote = judge_pairs(
            _hf_system(tiny_llava), pairs, root, cache_path=tmp_path / "b", environ={}
        )
    assert _rows(remote) == _rows(local)
    assert {r["status"] for r in _rows(local)} == {"parse_error"}  # a random model's gibberish


class _AnswersAndDiesOnce:
    """The real hf provider in the actor, but it dies at its first call (a marker file lets
    the restarted actor go on), and its gibberish is replaced by a parseable answer so the
    cache (which keeps answers, never parse errors) can be checked on resume."""

    def __init__(self, marker: str, **kwargs: Any) -> None:
        from reidbench.judges.providers.hf import HFProvider

        self.inner = HFProvider(**kwargs)
        self.marker = marker

    async def complete(self, req: Any) -> Any:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        reply = await self.inner.complete(req)
        reply.text = '{"score": 80, "same_person": true, "reasons": "same jacket"}'
        return reply

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_killed_model_actor_is_asked_again_and_resume_pays_nothing(
    ray_instance, tiny_llava, crops, tmp_path, monkeypatch
):
    import functools

    from reidbench.judges import judge_pairs
    from reidbench.judges.providers import hf as hf_module

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = str(tmp_path / "died")
    monkeypatch.setattr(hf_module, "HFProvider", functools.partial(_AnswersAndDiesOnce, marker))
    root, pairs = crops
    cache = tmp_path / "cache.sqlite"
    with session("ray"):
        first = _rows(
            judge_pairs(_hf_system(tiny_llava), pairs, root, cache_path=cache, environ={})
        )
        again = _rows(
            judge_pairs(_hf_system(tiny_llava), pairs, root, cache_path=cache, environ={})
        )
    assert os.path.exists(marker)  # the actor really died once
    assert [r["status"] for r in first] == ["ok"] * 3, [r["error"] for r in first]
    assert [r["score"] for r in first] == [80.0] * 3
    assert [r["attempts"] for r in first] == [1, 1, 1]  # Ray resent the killed call
    assert all(r["cached"] for r in again)  # resume: no call at all
    assert [r["score"] for r in again] == [r["score"] for r in first]


def test_run_engine_option_overrides_the_config(run_cli, market: Path, tmp_path, monkeypatch):
    """`--engine local` wins over `[engine] kind = "ray"`; the manifest records what ran."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the Ray engine was started")

    monkeypatch.setattr(RayEngine, "__init__", refuse)
    cfg = _experiment_config(tmp_path / "c.toml", market, "ray")
    result = run_cli("run", cfg, "--out", tmp_path / "run", "--engine", "local")
    assert result.code == 0, result.err
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["config"]["engine"] == {"kind": "local", "address": None}

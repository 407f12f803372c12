"""End to end: synthetic dataset -> run with an `attributes` system on the fake server ->
metrics.json per-attribute accuracy (checked against a brute-force count) -> report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import fisher_exact

from reidbench.config import DatasetConfig, ExperimentConfig, LVLMSystemConfig, PairsConfig
from reidbench.datasets import load_dataset
from reidbench.datasets.attributes import load_attributes
from reidbench.experiment import run_experiment
from reidbench.judges.images import ImageSpec
from reidbench.metrics import stats
from reidbench.tables import read_table
from tests.fake_llm_server import FakeLLMServer
from tests.fusion_fixtures import image_identities

KEY = "sk-test-attributes-0123456789"
ENV = {"FAKE_KEY": KEY}
COLOURS = ("black", "white", "red", "purple", "yellow", "gray", "blue", "green")


def misperceives(pid: int) -> bool:
    """The scripted LVLM gets the upper colour of these people wrong."""
    return pid % 3 == 0


def perception(truth: dict[int, dict[str, str]], ids: dict[str, int]):
    def attributes(image: bytes) -> dict[str, str]:
        pid = ids[hashlib.sha256(image).hexdigest()]
        seen = dict(truth.get(pid, {}))
        if misperceives(pid):
            true = seen.get("upper_colour")
            seen["upper_colour"] = "green" if true != "green" else "red"
        seen["gender"] = "unclear"  # not annotated in the synthetic set: ignored
        if "hat" in seen:
            seen["hat"] = seen["hat"].upper()  # loose spelling: normalised
        return seen

    return attributes


def decisions(ids: dict[str, int]):
    """80 same / 20 different, but confidently wrong (5 / 95) when either person is one
    the model misperceives: misperception and catastrophic answers go together."""

    def score(images: list[bytes]) -> int:
        a, b = (ids[hashlib.sha256(x).hexdigest()] for x in images)
        same = a == b
        if misperceives(a) or misperceives(b):
            return 5 if same else 95
        return 80 if same else 20

    return score


@pytest.mark.slow
def test_attributes_system_end_to_end(tmp_path: Path) -> None:
    from reidbench.datasets.synthetic import generate

    root = tmp_path / "synth"
    generate(root, train_ids=2, test_ids=12, seed=3)
    dataset = load_dataset(root)
    truth = load_attributes(dataset)
    paths = [r.path for r in dataset.query + dataset.gallery]
    ids = image_identities(root, paths, ImageSpec(size=64))
    with FakeLLMServer(require_key=KEY) as srv:
        srv.attributes_fn = perception(truth, ids)
        srv.score_fn = decisions(ids)
        srv.faults.extend(["garbage"])  # one unreadable answer: no attributes, parse_error
        cfg = ExperimentConfig(
            name="attrs",
            dataset=DatasetConfig(root=root),
            pairs=PairsConfig(positives=30, negatives=30, seed=1),
            systems=[
                LVLMSystemConfig(
                    name="fake-attrs",
                    type="lvlm",
                    provider="openai",
                    model="fake-model",
                    base_url=srv.openai_base,
                    api_key_env="FAKE_KEY",
                    prompt="attributes",
                    concurrency=2,
                    image_size=64,
                    max_retries=1,
                    retry_base_s=0.01,
                    retry_max_s=0.02,
                )
            ],
            bootstrap=200,
        )
        out = tmp_path / "run"
        run_experiment(cfg, out, environ=ENV)
        asked = [r for r in srv.records if r.status == 200]
        assert asked and all("image_a" in json.dumps(r.body) for r in asked)

    # The run directory holds its own copy of the ground truth.
    copied = json.loads((out / "attributes.json").read_text())["identities"]
    assert {int(k): v for k, v in copied.items()} == truth

    # Brute force from the files: every annotated attribute of every image of a primary
    # answer the model gave; prediction from the raw JSON, unreadable -> not correct.
    pairs = read_table(out / "pairs.parquet").to_pydict()
    scores = read_table(out / "scores.parquet").to_pydict()
    row = {p: i for i, p in enumerate(scores["pair_id"])}
    obs: dict[str, list[tuple[int, bool, bool]]] = {}  # attr -> (pid, answered, correct)
    upper_mis, catastrophic = [], []
    n_parse_errors = 0
    for k, pid_pair in enumerate(pairs["pair_id"]):
        r = row[pid_pair]
        status = scores["status"][r]
        n_parse_errors += status == "parse_error"
        try:
            answer = json.loads(scores["raw"][r])
        except ValueError:
            answer = None
        sides = (pairs["pid_a"][k], pairs["pid_b"][k])
        mis = False
        checked = False
        for s, pid in enumerate(sides):
            for attr, value in truth.get(pid, {}).items():
                pred = answer[("image_a", "image_b")[s]][attr].lower() if answer else None
                obs.setdefault(attr, []).append((pid, pred is not None, pred == value))
                if attr == "upper_colour" and pred is not None:
                    checked = True
                    mis |= pred != value
        if checked:
            score = scores["score"][r]
            label = pairs["label"][k]
            confident = score is not None and (score >= 90 if label == 0 else score <= 10)
            upper_mis.append(mis)
            catastrophic.append(status == "parse_error" or confident)
    assert n_parse_errors == 1

    metrics = json.loads((out / "metrics.json").read_text())
    block = metrics["systems"]["fake-attrs"]["attributes"]
    assert block["ground_truth"]["identities"] == len(truth)
    assert block["answers_with_attributes"] == len(pairs["pair_id"]) - 1
    per = block["per_attribute"]
    assert "gender" not in per  # the synthetic set has no gender
    assert set(per) == set(obs)
    for attr, items in obs.items():
        got = per[attr]
        correct = np.array([c for _, _, c in items])
        assert got["n"] == len(items)
        assert got["correct"] == int(correct.sum())
        assert got["accuracy"] == pytest.approx(correct.mean())
        assert got["answered"] == sum(a for _, a, _ in items)
        # Interval: identities resampled with metrics.stats' draws, recomputed by a loop.
        pids = np.array([p for p, _, _ in items])
        uniq = np.unique(pids)
        draws = stats.bootstrap_indices(
            uniq.size, 200, metrics["run"]["protocol"]["bootstrap"]["seed"]
        )
        accs = []
        for d in draws:
            take = np.concatenate([np.flatnonzero(pids == uniq[j]) for j in d])
            accs.append(correct[take].mean())
        lo, hi = np.percentile(accs, [2.5, 97.5])
        assert got["ci"]["low"] == pytest.approx(lo) and got["ci"]["high"] == pytest.approx(hi)
    # Everything right except the scripted upper colour of every third person and the two
    # images of the unreadable answer.
    assert per["hat"]["correct"] == per["hat"]["n"] - 2
    assert per["hat"]["answered"] == per["hat"]["n"] - 2
    assert per["upper_colour"]["accuracy"] < 0.9

    conf = block["colour_confusion"]["upper_colour"]
    assert conf["answer"] == [*COLOURS, "other", "no answer"]
    m = np.array(conf["counts"])
    assert m.sum() == per["upper_colour"]["n"]
    diag = sum(m[i, conf["answer"].index(t)] for i, t in enumerate(conf["truth"]))
    assert diag == per["upper_colour"]["correct"]

    cat = block["with_catastrophic"]["by_attribute"]["upper_colour"]
    mis, c = np.array(upper_mis), np.array(catastrophic)
    table = [
        [int((mis & c).sum()), int((~mis & c).sum())],
        [int((mis & ~c).sum()), int((~mis & ~c).sum())],
    ]
    odds, p = fisher_exact(table)
    assert cat["odds_ratio"] == (pytest.approx(odds) if np.isfinite(odds) else None)
    assert (cat["misperceived_catastrophic"], cat["catastrophic"]) == (table[0][0], sum(table[0]))
    assert (cat["misperceived_other"], cat["other"]) == (table[1][0], sum(table[1]))
    assert cat["p_value"] == pytest.approx(p)
    assert cat["p_value"] < 0.01 and cat["rate_catastrophic"] > cat["rate_other"]

    html = (out / "report.html").read_text()
    assert 'id="attributes"' in html and "Per-attribute accuracy" in html
    assert "upper colour" in html and "Misperceived attributes and catastrophic answers" in html
    assert f"{per['hat']['accuracy']:.3f}" in html

"""Attribute ground truth (synthetic, Market-1501_Attribute .mat) and the answer reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from hypothesis import given
from hypothesis import strategies as st

from reidbench.datasets import load_dataset
from reidbench.datasets.attributes import (
    VOCABULARY,
    load_attributes,
    load_attributes_with_source,
    read_market_mat,
    synthetic_attributes,
)
from reidbench.datasets.synthetic import IDENTITIES_FILE, generate
from reidbench.errors import UserError
from reidbench.judges.attribute_answers import (
    OTHER,
    UNCLEAR,
    UNREADABLE,
    asks_attributes,
    normalise_value,
    read_attribute_answer,
)
from reidbench.judges.parse import parse_answer
from reidbench.judges.prompts import load_prompt
from tests.dataset_trees import make_market_small

# -- synthetic ground truth ----------------------------------------------------------------


def test_synthetic_mapping_uses_market_vocabulary_and_drops_what_it_cannot_name() -> None:
    person = {
        "hair_length": "medium",  # between Market's short and long: not annotated
        "sleeves": "short",
        "lower_kind": "skirt",
        "hat": "beanie",
        "bag": "shoulder bag",
        "upper": "navy",
        "lower": "khaki",  # no Market lower colour: not annotated
    }
    assert synthetic_attributes(person) == {
        "sleeve_length": "short",
        "lower_length": "short",
        "lower_type": "dress",
        "hat": "yes",
        "backpack": "no",
        "bag": "yes",
        "handbag": "no",
        "upper_colour": "blue",
    }
    bald = {**person, "hair_length": "bald", "lower_kind": "trousers", "upper": "grey"}
    out = synthetic_attributes(bald)
    assert (out["hair_length"], out["lower_length"], out["lower_type"]) == (
        "short",
        "long",
        "pants",
    )
    assert out["upper_colour"] == "gray"
    assert "gender" not in out  # the generator draws no gender


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, train_ids=2, test_ids=6, seed=4)
    return root


@pytest.mark.slow
def test_synth_writes_attributes_json_matching_the_identities_it_drew(synth: Path) -> None:
    data = json.loads((synth / "attributes.json").read_text())
    assert data["format"] == "reidbench.attributes/1"
    assert data["vocabulary"] == {k: list(v) for k, v in VOCABULARY.items()}
    people = json.loads((synth / IDENTITIES_FILE).read_text())["people"]
    expected = {
        f"{p['pid']:04d}": synthetic_attributes(p)
        for p in people.values()
        if p["kind"] == "identity"
    }
    assert data["identities"] == expected
    assert len(expected) == 8
    dataset = load_dataset(synth)
    truth, source = load_attributes_with_source(dataset)
    assert "synth" in source
    assert truth == {int(k): v for k, v in expected.items()}
    for row in truth.values():
        assert all(v in VOCABULARY[k] for k, v in row.items())


@pytest.mark.slow
def test_older_synthetic_sets_derive_the_truth_from_the_identities_file(
    synth: Path, tmp_path: Path
) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(synth, old)
    (old / "attributes.json").unlink()
    assert load_attributes(load_dataset(old)) == load_attributes(load_dataset(synth))


# -- Market-1501_Attribute -----------------------------------------------------------------

UP = ("upblack", "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen")
DOWN = (
    "downblack", "downwhite", "downpink", "downpurple", "downyellow", "downgray", "downblue",
    "downgreen", "downbrown",
)  # fmt: skip


def _split(pids: list[int], rng: np.random.Generator, drop: tuple[str, ...] = ()) -> dict:
    n = len(pids)
    out: dict = {"image_index": np.array([f"{p:04d}" for p in pids], dtype=object)}
    for name in ("age",):
        out[name] = rng.integers(1, 5, size=(1, n)).astype(np.float64)
    for name in (
        "backpack", "bag", "handbag", "clothes", "down", "up", "hair", "hat", "gender",
    ):  # fmt: skip
        out[name] = rng.integers(1, 3, size=(1, n)).astype(np.float64)
    for group in (UP, DOWN):
        yes = rng.integers(0, len(group), size=n)
        for j, name in enumerate(group):
            out[name] = np.where(yes == j, 2.0, 1.0).reshape(1, n)
    for name in drop:
        out.pop(name)
    return out


def write_market_mat(path: Path, train: list[int], test: list[int], **kw) -> dict:
    """market_attribute.mat in the released layout: struct market_attribute with train/test
    structs of 1xN double arrays and a 1xN cell `image_index` of 4-digit pid strings."""
    rng = np.random.default_rng(0)
    data = {"train": _split(train, rng, **kw), "test": _split(test, rng, **kw)}
    scipy.io.savemat(path, {"market_attribute": data})
    return data


def test_mat_file_has_the_released_layout_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "market_attribute.mat"
    data = write_market_mat(path, [2, 7, 10], [1, 3])
    # The access pattern of the dataset's own reader (vana77/Market-1501_Attribute).
    ref = scipy.io.loadmat(str(path))["market_attribute"][0][0]["train"]
    assert ref["age"][0][0][0].tolist() == data["train"]["age"][0].tolist()
    assert [str(int(s[0])) for s in ref["image_index"][0][0][0]] == ["2", "7", "10"]

    truth = read_market_mat(path)
    assert sorted(truth) == [1, 2, 3, 7, 10]
    for split, pids in (("train", [2, 7, 10]), ("test", [1, 3])):
        d = data[split]
        for i, pid in enumerate(pids):
            row = truth[pid]
            code = {k: int(d[k][0][i]) for k in d if k != "image_index"}
            assert row["gender"] == ("male", "female")[code["gender"] - 1]
            assert row["hair_length"] == ("short", "long")[code["hair"] - 1]
            assert row["sleeve_length"] == ("long", "short")[code["up"] - 1]
            assert row["lower_length"] == ("long", "short")[code["down"] - 1]
            assert row["lower_type"] == ("dress", "pants")[code["clothes"] - 1]
            for a in ("hat", "backpack", "bag", "handbag"):
                assert row[a] == ("no", "yes")[code[a] - 1]
            assert row["upper_colour"] == next(c[2:] for c in UP if code[c] == 2)
            assert row["lower_colour"] == next(c[4:] for c in DOWN if code[c] == 2)
            assert "age" not in row  # not asked, not scored


def test_mat_with_fewer_attributes_uses_only_those(tmp_path: Path) -> None:
    path = tmp_path / "m.mat"
    write_market_mat(path, [1, 2], [3], drop=("gender", "hat", *UP))
    truth = read_market_mat(path)
    for row in truth.values():
        assert not {"gender", "hat", "upper_colour"} & set(row)
        assert {"lower_colour", "backpack"} <= set(row)


def test_market_option_loads_the_mat_and_refuses_bad_files(tmp_path: Path, run_cli) -> None:
    root = make_market_small(tmp_path / "market", train_ids=2, test_ids=2)
    path = tmp_path / "market_attribute.mat"
    write_market_mat(path, [1, 2], [3, 4])
    dataset = load_dataset(root, "market1501", options={"attributes": str(path)})
    truth, source = load_attributes_with_source(dataset)
    assert sorted(truth) == [1, 2, 3, 4] and "Market-1501_Attribute" in source
    assert load_attributes(load_dataset(root, "market1501")) is None  # not given: none

    with pytest.raises(UserError, match="not found"):
        load_dataset(root, "market1501", options={"attributes": str(tmp_path / "nope.mat")})
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a mat file at all")
    with pytest.raises(UserError, match="not a readable MATLAB"):
        load_dataset(root, "market1501", options={"attributes": str(junk)})
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"x": np.ones((1, 3))})
    with pytest.raises(UserError, match="train/test"):
        load_dataset(root, "market1501", options={"attributes": str(other)})
    res = run_cli("dataset", "info", root, "--dataset-option", f"attributes={junk}")
    assert res.code == 2 and "Traceback" not in res.err
    assert str(junk) in res.err


def test_attributes_json_values_are_checked(tmp_path: Path) -> None:
    root = make_market_small(tmp_path / "market", train_ids=1, test_ids=1)
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps({"identities": {"0001": {"upper_colour": "mauve"}}}))
    with pytest.raises(UserError, match="mauve"):
        load_dataset(root, "market1501", options={"attributes": str(bad)})
    good = tmp_path / "b.json"
    good.write_text(json.dumps({"identities": {"0001": {"upper_colour": "red", "hat": None}}}))
    ds = load_dataset(root, "market1501", options={"attributes": str(good)})
    assert load_attributes(ds) == {1: {"upper_colour": "red"}}


# -- the prompt and the answer reader ------------------------------------------------------


def test_attributes_prompt_asks_every_attribute_with_the_vocabulary() -> None:
    prompt = load_prompt("attributes")
    assert prompt.answer == "decision" and asks_attributes("attributes")
    for side in ("image_a", "image_b"):
        props = prompt.schema["properties"][side]["properties"]
        assert set(props) == set(VOCABULARY)
        for attr, values in VOCABULARY.items():
            extra = {OTHER, UNCLEAR} if attr in ("upper_colour", "lower_colour") else {UNCLEAR}
            assert set(props[attr]["enum"]) == set(values) | extra
            assert attr in prompt.task
    assert not asks_attributes("similarity-0-100")


def test_reader_normalises_values_and_the_decision_still_parses() -> None:
    reply = (
        "Here you go:\n```json\n"
        + json.dumps(
            {
                "image_a": {
                    "upper_colour": "Grey",
                    "hat": True,
                    "lower_type": "skirt",
                    "lower_length": "Shorts",
                    "gender": "unclear",
                    "bag": "maybe",
                },
                "image_b": "none visible",
                "decision": "different",
                "confidence": 80,
            }
        )
        + "\n```"
    )
    a, b = read_attribute_answer(reply)
    assert a["upper_colour"] == "gray" and a["hat"] == "yes" and a["lower_type"] == "dress"
    assert a["lower_length"] == "short" and a["gender"] == UNCLEAR
    assert a["bag"] == UNREADABLE and a["backpack"] == UNREADABLE  # bad value; missing key
    assert set(b.values()) == {UNREADABLE}
    parsed = parse_answer(reply, load_prompt("attributes"))
    assert (parsed.status, parsed.decision, parsed.score) == ("ok", "different", 20.0)
    assert read_attribute_answer('{"score": 50}') is None
    assert read_attribute_answer(None) is None
    assert normalise_value("hair_length", "other") == UNREADABLE  # "other" is for colours
    assert normalise_value("lower_colour", "OTHER") == OTHER


@given(
    attr=st.sampled_from(sorted(VOCABULARY)),
    value=st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans()),
)
@pytest.mark.slow
def test_reader_never_leaves_the_vocabulary(attr: str, value: object) -> None:
    out = normalise_value(attr, value)
    assert out in (*VOCABULARY[attr], OTHER, UNCLEAR, UNREADABLE)
    if out == OTHER:
        assert attr in ("upper_colour", "lower_colour")


@pytest.mark.slow
@given(attr=st.sampled_from(sorted(VOCABULARY)), data=st.data())
def test_vocabulary_values_survive_case_spaces_and_underscores(attr: str, data) -> None:
    value = data.draw(st.sampled_from(VOCABULARY[attr]))
    spelled = data.draw(st.sampled_from([value, value.upper(), f"  {value.title()} "]))
    assert normalise_value(attr, spelled) == value


# -- the prompt over each provider's wire format ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_attributes_prompt_round_trips_through_each_provider(provider: str, tmp_path: Path) -> None:
    """Structured output with the nested schema reaches the (fake) provider, and the values
    it answers come back normalised: the fake's defaults include "Grey" and "unclear"."""
    import pyarrow as pa
    from PIL import Image

    from reidbench.config import LVLMSystemConfig
    from reidbench.judges import judge_pairs
    from reidbench.judges.images import ImageSpec, prepare
    from tests.fake_llm_server import FakeLLMServer, default_attributes

    rng = np.random.default_rng(1)
    for i in range(4):
        arr = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"img{i}.png")
    pairs = pa.table({"pair_id": [1, 2], "path_a": ["img0.png", "img1.png"],
                      "path_b": ["img2.png", "img3.png"]})  # fmt: skip
    with FakeLLMServer(require_key="sk-attributes-0123") as srv:
        base = srv.openai_base if provider == "openai" else srv.url
        cfg = LVLMSystemConfig(
            name="a", type="lvlm", provider=provider, model="fake-model", base_url=base,
            api_key_env="K", prompt="attributes", image_size=64, concurrency=1,
        )  # fmt: skip
        table = judge_pairs(
            cfg,
            pairs,
            tmp_path,
            cache_path=tmp_path / "c.sqlite",
            environ={"K": "sk-attributes-0123"},
        )
        assert all(r.structured for r in srv.records)
    spec = ImageSpec(size=64)
    for r in table.to_pylist():
        assert r["status"] == "ok" and r["decision"] in ("same", "different")
        a, b = read_attribute_answer(r["raw"])
        i = r["pair_id"] - 1
        for side, name in ((a, f"img{i}.png"), (b, f"img{i + 2}.png")):
            sent = prepare(tmp_path / name, tmp_path / name, spec)[0].data
            expected = {k: normalise_value(k, v) for k, v in default_attributes(sent).items()}
            assert side == expected

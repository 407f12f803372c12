"""The HTML report: self-contained, escaped, complete protocol, numbers from metrics.json."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reidbench.errors import UserError
from reidbench.judges import load_prompt
from reidbench.metrics.run import compute_metrics
from reidbench.report import format as fmt
from reidbench.report import render_report, write_report
from tests.report_runs import IMG, SCRIPT, make_run

FIXED = "2026-11-28 12:00 UTC"


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Elements:
    p = _Elements()
    p.feed(html)
    p.close()
    return p


@pytest.fixture(scope="module")
def lvlm_run(tmp_path_factory):
    run, metrics = make_run(tmp_path_factory.mktemp("report"))
    summary = write_report(run, metrics, generated=FIXED)
    return {"run": run, "m": metrics, "summary": summary, "html": (run / "report.html").read_text()}


@pytest.mark.slow
def test_writes_report_and_summary(lvlm_run):
    run = lvlm_run["run"]
    assert (run / "summary.md").read_text() == lvlm_run["summary"]
    assert lvlm_run["summary"].count("\n| gpt-4o ") == 1
    html = lvlm_run["html"]
    assert html.startswith("<!doctype html>")
    assert html.rstrip().endswith("</html>")
    assert not list(run.glob("*.tmp*")) and not list(run.glob(".*"))


@pytest.mark.slow
def test_self_contained_and_script_free(lvlm_run):
    html = lvlm_run["html"]
    doc = _parse(html)
    tags = [t for t, _ in doc.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert "<script" not in html.lower()
    csp = [
        a for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp[0]["content"]
    assert "img-src data:" in csp[0]["content"] and "script-src" not in csp[0]["content"]
    for tag, attrs in doc.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"<{tag} {name}=...>"
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                assert value and (value.startswith("data:") or value.startswith("#")), (tag, value)
    assert not re.search(r"url\(\s*['\"]?(?!data:)", html), "CSS must not load anything"


def test_model_text_is_escaped_everywhere(lvlm_run):
    html, m = lvlm_run["html"], lvlm_run["m"]
    assert SCRIPT not in html and IMG not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    doc = _parse(html)
    # Every <img> is one of ours: a figure or a thumbnail, each a data URI with alt text.
    imgs = [a for t, a in doc.tags if t == "img"]
    assert imgs and all(a["src"].startswith("data:image/") and a.get("alt") for a in imgs)
    # The hostile text reaches the reader as text: the parser sees it inside data.
    text = "".join(doc.text)
    assert SCRIPT in text and IMG in text
    shown = [e for cats in m["failures"]["examples"].values() for es in cats.values() for e in es]
    assert shown, "the fixture must produce failure examples"
    for e in shown:
        assert f"pair {e['pair_id']}" in text


@pytest.mark.slow
def test_synthetic_banner(lvlm_run):
    assert "SYNTHETIC DATA." in lvlm_run["html"]
    assert "(synthetic data)</title>" in lvlm_run["html"]
    assert "SYNTHETIC" in lvlm_run["summary"]
    m = copy.deepcopy(lvlm_run["m"])
    m["run"]["synthetic"] = m["run"]["dataset"]["synthetic"] = False
    html, summary = render_report(lvlm_run["run"], m, generated=FIXED)
    assert "SYNTHETIC" not in html and "SYNTHETIC" not in summary
    assert "<dt>Synthetic</dt><dd>no</dd>" in html


def _cell_texts(html: str) -> str:
    return " ".join(" ".join(_parse(html).text).split())


def test_headline_numbers_come_from_metrics(lvlm_run):
    text, m = _cell_texts(lvlm_run["html"]), lvlm_run["m"]
    for name, b in m["systems"].items():
        for key in ("accuracy", "f1", "auc", "pr_auc", "eer", "tar_at_far_1e-2"):
            iv = b["ci"]["intervals"][key]
            expected = f"{b[key]:.3f} [{iv['low']:.3f}, {iv['high']:.3f}]"
            assert expected in text, (name, key, expected)
        c = b["confusion"]
        for v in (c["tn"], c["fp"], c["fn"], c["tp"]):
            assert f"{v:,}" in text
    comp = m["comparisons"][0]
    assert fmt.pvalue(comp["mcnemar"]["p_value"]) in text
    d = comp["auc_diff"]
    assert f"{d['diff']:.3f} [{d['ci']['low']:.3f}, {d['ci']['high']:.3f}]" in text
    lv = m["systems"]["gpt-4o"]
    assert f"{lv['coverage']:.3f}" in text
    assert f"{lv['n_answered']} / {lv['n_pairs']}" in text
    assert fmt.usd(lv["costs"]["usd_per_1000_pairs"]) in text
    assert fmt.usd(lv["costs"]["this_run"]["usd"]) in text
    assert f"{lv['failures']['catastrophic']}" in text


def test_protocol_header_is_complete(lvlm_run):
    text, m = _cell_texts(lvlm_run["html"]), lvlm_run["m"]
    run = m["run"]
    meta = run["pairs"]["meta"]
    prompt = load_prompt("similarity-0-100")
    for needle in (
        meta["content_hash"],
        "query-gallery",
        "Seed 0",
        f"{run['pairs']['n_pairs']} (24 same person, 24 different)",
        "market1501",
        "similarity-0-100 v1",
        prompt.sha256[:12],
        "$2.5 in / $10 out per million tokens, as of 2025-01-30",
        "max accuracy, cross-fitted over identity-disjoint halves",
        "handcrafted-0123456789abcdef",
        "both orders, 2 time(s) per order",
        "reidbench 0.1.0",
        "resamples: 60",
        "same pid, different cameras",
        FIXED,
    ):
        assert needle in text, needle
    # The exact prompt text is shown, because its hash matches the one the run recorded.
    assert " ".join(prompt.system.split()) in text


@pytest.mark.slow
def test_prompt_text_hidden_when_hash_differs(lvlm_run):
    m = copy.deepcopy(lvlm_run["m"])
    m["systems"]["gpt-4o"]["info"]["prompt_sha256"] = "0" * 64
    html, _ = render_report(lvlm_run["run"], m, generated=FIXED)
    prompt = load_prompt("similarity-0-100")
    assert " ".join(prompt.system.split()) not in _cell_texts(html)
    assert "content hash mismatch" in html


def test_thumbnails_and_missing_image_placeholders(lvlm_run):
    html, m = lvlm_run["html"], lvlm_run["m"]
    ex = m["failures"]["examples"]["gpt-4o"]["refusal"][0]
    assert "image B not found: " + ex["path_b"] in _cell_texts(html)  # the fixture drops B images
    jpegs = re.findall(r'src="data:image/jpeg;base64,[^"]+"', html)
    n_examples = sum(len(es) for es in m["failures"]["examples"]["gpt-4o"].values())
    for w in m["embedder_failures"]["systems"].values():  # the embedders' gallery
        n_examples += len(w["false_accepts"]) + len(w["false_rejects"])
    for d in m["disagreement"]:  # the LVLM-ReID disagreement gallery
        n_examples += sum(len(es) for es in d["examples"].values())
    assert len(jpegs) == n_examples  # one A thumbnail per example


@pytest.mark.slow
def test_deterministic_except_timestamp(lvlm_run):
    again, _ = render_report(lvlm_run["run"], lvlm_run["m"], generated="2030-01-01 00:00 UTC")
    assert again != lvlm_run["html"]
    assert again.replace("2030-01-01 00:00 UTC", FIXED) == lvlm_run["html"]


def test_missing_values_say_why(lvlm_run):
    text = _cell_texts(lvlm_run["html"])
    assert "Latency p50, Latency p95 of handcrafted: no ok row with a recorded latency" in text
    assert "not counted for embedders" in text
    assert "handcrafted: the run did not ask both orders" in text


RERANK = {
    "format": "reidbench.rerank/1",
    "name": "rr",
    "dataset": {"name": "market1501", "synthetic": True, "gallery_images": 40},
    "reid": {"name": "handcrafted", "model": "handcrafted", "fingerprint": "hc-1"},
    "lvlm": {
        "name": IMG,
        "model": "gpt-4o",
        "prompt_id": "similarity-0-100",
        "prompt_version": "1",
    },
    "settings": {"top_k": 10, "method": "fuse", "alpha": 0.5, "queries": 5, "seed": 0},
    "protocol": {"failures": "an item whose LVLM answer failed keeps its ReID position"},
    "queries": {"n_selected": 5, "indices": [0, 1, 2, 3, 4]},
    "before": {
        "rank1": 0.4,
        "rank5": 0.6,
        "rank10": 0.8,
        "mAP": 0.35,
        "mINP": 0.2,
        "cmc": [0.4, 0.5, 0.6, 0.7],
    },
    "after": {
        "rank1": 0.6,
        "rank5": 0.8,
        "rank10": 0.8,
        "mAP": 0.45,
        "mINP": 0.25,
        "cmc": [0.6, 0.7, 0.8, 0.8],
    },
    "delta": {"rank1": 0.2, "rank5": 0.2, "rank10": 0.0, "mAP": 0.1, "mINP": 0.05},
    "calls": {
        "pairs_judged": 50,
        "answered": 48,
        "calls_this_run": 50,
        "usd_this_run": 0.13,
        "usd_answers": 0.13,
    },
    "per_query": [
        {"query": i, "before": list(range(10)), "after": list(range(10))} for i in range(5)
    ],
}


@pytest.mark.slow
def test_fusion_cascade_and_rerank_sections(tmp_path):
    """The blocks as reidbench.fusion writes them: fused and cascade systems, plus rerank."""
    from reidbench.fusion import fuse_run

    run, _ = make_run(tmp_path, n=60, missing_images=False, bootstrap=30)
    fuse_run(run, ["handcrafted", "gpt-4o"], cv_folds=3, cs=3)
    fuse_run(run, ["handcrafted", "gpt-4o"], method="cascade", fractions=[0, 0.25, 0.5, 1])
    m = compute_metrics(run)
    assert m["fusion"] and m["cascade"]
    m["rerank"] = RERANK
    html, summary = render_report(run, m, generated=FIXED)
    doc = _parse(html)
    ids = [a.get("id") for t, a in doc.tags if t == "section"]
    assert ids[-3:] == ["fusion", "cascade", "rerank"]
    for key in ("fusion", "cascade", "rerank"):
        assert f'<a href="#{key}">' in html
    text = _cell_texts(html)
    (fused_name, fused), (cascade_name, cascade) = (*m["fusion"].items(), *m["cascade"].items())
    assert fused_name in summary and cascade_name in summary
    f = fused["fused"]
    assert f"{f['auc']:.3f} [{f['ci']['auc']['low']:.3f}, {f['ci']['auc']['high']:.3f}]" in text
    for b in fused["singles"].values():
        assert f"{b['auc']:.3f} [{b['ci']['auc']['low']:.3f}, {b['ci']['auc']['high']:.3f}]" in text
    vs = fused["vs_best"]["auc_diff"]
    if len(fused["selection"]["chosen"]) == 1:  # one input kept: the fused score ranks like it
        assert vs["diff"] == pytest.approx(0.0, abs=1e-12)
    else:
        assert f"{vs['diff']:.3f} [{vs['ci']['low']:.3f}, {vs['ci']['high']:.3f}]" in text
    # input selection: one row per candidate with its CV AUC, the kept inputs and the note
    sel = fused["selection"]
    assert len(sel["candidates"]) == 3 and "Input selection" in html
    for c in sel["candidates"]:
        assert f"{c['cv_auc_mean']:.4f}" in text and f"\u00b1 {c['cv_auc_std']:.4f}" in text
    assert sel["note"] in text
    op = cascade["operating_point"]
    assert op["rule"] in text and f"{op['f1']:.3f}" in text
    assert len(cascade["curve"]) <= text.count("%") and "Curve on held-out pairs" in text
    alts = [a.get("alt") for t, a in doc.tags if t == "img"]
    assert "Cascade curve" in alts and "CMC before and after re-ranking" in alts
    # re-ranking: the table, the change row, escaped names, per-query lists left out
    assert "+0.200" in text and "0.600" in text and "50 pairs judged, 48 answered" in text
    assert IMG not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "per_query" not in html


def test_unknown_metrics_format_is_a_user_error(tmp_path, lvlm_run):
    m = dict(lvlm_run["m"], format="reidbench.metrics/99")
    with pytest.raises(UserError, match="metrics format"):
        write_report(tmp_path, m)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "summary.md").exists()


@pytest.mark.slow
def test_report_without_run_json_or_images(tmp_path, lvlm_run):
    """metrics.json alone is enough: no run.json, no dataset on this machine."""
    m = copy.deepcopy(lvlm_run["m"])
    m["run"]["dataset"]["root"] = str(tmp_path / "elsewhere")
    summary = write_report(tmp_path, m, generated=FIXED)
    html = (tmp_path / "report.html").read_text()
    assert "image A not found" in html and summary.startswith("**report-test**")


@pytest.mark.slow
def test_cli_report_prints_the_summary(run_cli, tmp_path):
    run, _ = make_run(tmp_path, n=24, missing_images=False)
    (run / "report.html").unlink(missing_ok=True)
    res = run_cli("report", run)
    assert res.code == 0, res.err
    assert "| system" in res.out and "| gpt-4o" in res.out and "SYNTHETIC" in res.out
    assert (run / "report.html").is_file() and (run / "summary.md").is_file()
    assert json.loads((run / "metrics.json").read_text())["format"] == "reidbench.metrics/1"


def test_size_is_modest(lvlm_run):
    assert len(lvlm_run["html"].encode()) < 1_500_000
    assert Path(lvlm_run["run"] / "report.html").stat().st_size == len(lvlm_run["html"].encode())


@pytest.mark.slow
def test_malformed_optional_blocks_do_not_break_the_report(lvlm_run):
    """Blocks written by a newer or older fusion stage still render (raw, under details)."""
    m = copy.deepcopy(lvlm_run["m"])
    m["fusion"] = {"x": {"model": [1, 2], "fused": "bad", "singles": None, "vs_best": 3}}
    m["fusion"]["w"] = {
        "selection": {
            "chosen": SCRIPT,
            "note": SCRIPT,
            "rule": SCRIPT,
            "candidates": [{"inputs": [SCRIPT], "cv_auc_mean": "bad", "features": 3}, 5],
        }
    }
    m["cascade"] = {"y": {"curve": "nope", "operating_point": [], "rules": None}}
    m["rerank"] = {"before": [], "settings": "x", "protocol": {"k": SCRIPT}}
    m["fusion_skipped"] = [{"name": "z", "reason": "a system of the run has the same name"}]
    html, _ = render_report(lvlm_run["run"], m, generated=FIXED)
    ids = [a.get("id") for t, a in _parse(html).tags if t == "section"]
    assert ids[-3:] == ["fusion", "cascade", "rerank"]
    assert "z: skipped (a system of the run has the same name)" in html
    assert SCRIPT not in html


@pytest.mark.slow
def test_decision_only_system(tmp_path):
    """A same/different prompt has decisions but no scores: threshold metrics, no curves."""
    run, m = make_run(tmp_path, n=30, missing_images=False, decision_only=True)
    b = m["systems"]["yesno"]
    assert b["n_decision_only"] == 30 and b["auc"] is None
    html, summary = render_report(run, m, generated=FIXED)
    text = _cell_texts(html)
    assert f"{b['accuracy']:.3f} [" in text
    assert "AUC, AP, EER, TAR@FAR 1% of yesno: no scored pairs" in text
    row = next(ln for ln in summary.splitlines() if ln.startswith("| yesno"))
    assert "—" in row and f"{b['accuracy']:.3f}" in row

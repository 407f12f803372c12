"""The protocol header: what exactly was measured (data, pairs, systems, rules, versions).

A reader must be able to repeat the experiment from this section alone, so every
choice recorded in metrics.json and run.json is shown here, including the ones
that look like defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidbench.metrics import specs
from reidbench.report import format as fmt
from reidbench.report.model import scalar_text

Pairs = list[tuple[str, str]]  # (label, value) rows of a definition list


@dataclass
class SystemCard:
    name: str
    colour: str
    kind: str
    facts: Pairs
    params: Pairs = field(default_factory=list)
    prompt: PromptText | None = None


@dataclass
class PromptText:
    ident: str
    sha256: str
    parts: Pairs  # (system / user message, text) or empty when unavailable
    note: str = ""


THRESHOLD_SOURCES = {
    "recorded": "recorded in the config",
    "lvlm_default": "LVLM default",
    "calibration_best_f1": "best F1 on calibration half A",
    "fusion": "chosen by the fusion on calibration half A",
    "fixed": "fixed in the config",
    "stated": "the system's own yes/no",
    "recorded_fallback": "recorded (cross-fitting impossible)",
    "crossfit_accuracy": "max accuracy, cross-fitted over identity-disjoint halves (A's shown)",
    "crossfit_eer": "EER point, cross-fitted over identity-disjoint halves (A's shown)",
    "crossfit_f1": "best F1, cross-fitted over identity-disjoint halves (A's shown)",
}
TYPE_LABELS = {
    "lvlm": "LVLM judge",
    "reid": "ReID embedder",
    "fusion": "fused (logistic)",
    "cascade": "cascade (ReID, then LVLM)",
}


def type_label(kind: Any) -> str:
    return TYPE_LABELS.get(str(kind), str(kind or "system"))


def _humanise(key: str) -> str:
    return key.replace("_", " ").replace("-", " ")


def _flat(value: Any) -> str:
    """A nested value as one readable line ("k: v; k: v")."""
    if isinstance(value, Mapping):
        return "; ".join(f"{_humanise(str(k))}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_flat(v) for v in value)
    return scalar_text(value)


def dataset_facts(run: Mapping[str, Any]) -> Pairs:
    d = run.get("dataset") or {}

    def ids_images(ids: str, imgs: str) -> str:
        return f"{fmt.integer(d.get(ids))} ids, {fmt.integer(d.get(imgs))} images"

    rows: Pairs = [
        ("Dataset", str(d.get("dataset", fmt.DASH))),
        (
            "Synthetic",
            "YES: procedural pedestrians, not real people" if run.get("synthetic") else "no",
        ),
        ("Root", str(d.get("root", fmt.DASH))),
        ("Train split", ids_images("train_ids", "train_images")),
        ("Query split", ids_images("query_ids", "query_images")),
        ("Gallery split", ids_images("gallery_ids", "gallery_images")),
        ("Distractor images", fmt.integer(d.get("distractor_images"))),
        ("Junk images dropped", fmt.integer(d.get("junk_dropped"))),
        ("Cameras", fmt.integer(d.get("cameras"))),
    ]
    known = {"dataset", "root", "synthetic", "cameras", "junk_dropped", "distractor_images"}
    known |= {f"{s}_{k}" for s in ("train", "query", "gallery") for k in ("ids", "images")}
    rows += [(_humanise(k).capitalize(), _flat(v)) for k, v in d.items() if k not in known]
    return rows


def pair_facts(run: Mapping[str, Any]) -> Pairs:
    p = run.get("pairs") or {}
    meta = p.get("meta") or {}
    req = meta.get("requested") or {}
    rows: Pairs = [
        ("Split", str(meta.get("split", fmt.DASH))),
        ("Seed", scalar_text(meta.get("seed"))),
        (
            "Pairs measured",
            f"{fmt.integer(p.get('n_pairs'))} ({fmt.integer(p.get('n_same'))} same person, "
            f"{fmt.integer(p.get('n_different'))} different)",
        ),
    ]
    if req:
        rows.append(("Requested", _flat(req)))
    counts = meta.get("counts")
    if counts:
        rows.append(("Counts", _flat(counts)))
    rows.append(("Triplets (transitivity)", fmt.integer(p.get("n_triplets"))))
    if meta.get("triplet_kinds"):
        rows.append(("Triplet kinds", _flat(meta["triplet_kinds"])))
    rows.append(("Hard negatives", _flat(meta.get("hard_negatives")) or fmt.DASH))
    for key, rule in (meta.get("rules") or {}).items():
        rows.append((f"Rule: {_humanise(key)}", _flat(rule)))
    if meta.get("available"):
        rows.append(("Candidates available", _flat(meta["available"])))
    rows.append(("Pair-set content hash", str(meta.get("content_hash", fmt.DASH))))
    ds = meta.get("dataset") or {}
    if ds.get("records_hash"):
        rows.append(("Dataset records hash", str(ds["records_hash"])))
    if meta.get("format"):
        rows.append(("Pair-set format", str(meta["format"])))
    return rows


def camera_balance(run: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Pairs per unordered camera pair: (label kinds, [(camera pair, count per kind)])."""
    cams = ((run.get("pairs") or {}).get("meta") or {}).get("camera_pairs") or {}
    kinds = [k for k, v in cams.items() if isinstance(v, Mapping)]
    keys = sorted({k for kind in kinds for k in cams[kind]})
    return kinds, [(k, [scalar_text(cams[kind].get(k, 0)) for kind in kinds]) for k in keys]


RULE_LABELS = {
    "mcnemar": "McNemar test",
    "auc_diff": "AUC difference",
    "split": "Calibration split",
    "config_bootstrap": "Bootstrap (config)",
}


def _rule_label(key: str) -> str:
    """A metric's protocol label from the spec table, else RULE_LABELS, else the key."""
    for s in specs.METRIC_SPECS:
        if s.key == key and s.protocol_label:
            return s.protocol_label
    return RULE_LABELS.get(key, _humanise(key).capitalize())


def rule_facts(run: Mapping[str, Any]) -> Pairs:
    proto = run.get("protocol") or {}
    return [(_rule_label(str(k)), _flat(v)) for k, v in proto.items()]


def _price(prices: Mapping[str, Any] | None) -> str:
    if not isinstance(prices, Mapping) or not any(
        fmt.is_num(prices.get(k)) for k in ("in_per_mtok", "out_per_mtok")
    ):
        return "no price recorded"
    text = (
        f"${scalar_text(prices.get('in_per_mtok'))} in / ${scalar_text(prices.get('out_per_mtok'))}"
        " out per million tokens"
    )
    if prices.get("as_of"):
        text += f", as of {prices['as_of']}"
    if prices.get("source"):
        text += f" ({prices['source']})"
    return text


def _served(served: Mapping[str, Any] | None) -> str:
    """Which model versions the provider reported answering (run.json `served`)."""
    if not isinstance(served, Mapping):
        return "not recorded (run made before reidbench recorded it)"
    parts = [f"{v} ({fmt.integer(n)} answers)" for v, n in (served.get("versions") or {}).items()]
    if served.get("unreported"):
        parts.append(f"not reported ({fmt.integer(served['unreported'])} answers)")
    text = "; ".join(parts) or "no answers"
    fps = served.get("fingerprints") or {}
    if fps:
        text += "; system fingerprints: " + ", ".join(
            f"{k} ({fmt.integer(n)})" for k, n in fps.items()
        )
    return f"MORE THAN ONE VERSION answered: {text}" if served.get("mixed") else text


def system_card(
    name: str,
    block: Mapping[str, Any],
    colour: str,
    prompt: PromptText | None,
) -> SystemCard:
    info = block.get("info") or {}
    kind = block.get("type", info.get("type"))
    scale = block.get("scale", info.get("scale"))
    facts: Pairs = [("Type", type_label(kind))]
    combined = kind in ("fusion", "cascade")
    if combined:
        facts += _combined_facts(str(kind), block, info)
    else:
        facts.append(("Model", scalar_text(info.get("model"))))
    if kind == "lvlm":
        provider = info.get("provider")
        client = info.get("client")
        facts.append(("Provider", f"{provider} (client: {client})" if client else str(provider)))
        facts.append(("Endpoint", scalar_text(info.get("endpoint_host"))))
        if info.get("prompt_id"):
            facts.append(
                ("Prompt", f"{info['prompt_id']} v{scalar_text(info.get('prompt_version'))}")
            )
        facts.append(("Prices", _price(info.get("prices"))))
        facts.append(("Answered by", _served(info.get("served"))))
        facts.append(
            (
                "Asked",
                f"{'both orders' if info.get('both_orders') else 'one order (a, b)'}, "
                f"{scalar_text(info.get('repeats', 1))} time(s) per order",
            )
        )
    elif not combined:
        facts.append(
            (
                "Weights",
                scalar_text(info.get("weights"))
                if info.get("weights")
                else "the model's default (no weights file named in the config)",
            )
        )
    if info.get("fingerprint"):
        # A combined system's fingerprint is the digest of the answers it was fitted on.
        label = "Inputs digest" if combined else "Fingerprint"
        facts.append((label, str(info["fingerprint"])))
    facts.append(("Score scale", f"0 to {scale:g}" if fmt.is_num(scale) else fmt.DASH))
    thr = fmt.threshold(block.get("threshold"), scale)
    source = str(block.get("threshold_source", "source not recorded"))
    source_text = THRESHOLD_SOURCES.get(source, source)
    if kind == "cascade" and source == "fusion":
        source_text = "the cascade's decision rule, not fitted"
    facts.append(("Threshold", f"{thr} ({source_text})"))
    if block.get("threshold_note"):
        facts.append(("How it was chosen", str(block["threshold_note"])))
    if block.get("evaluated_on"):
        facts.append(("Evaluated on", _flat(block["evaluated_on"])))
    known = {
        "name",
        "type",
        "model",
        "provider",
        "client",
        "endpoint_host",
        "prompt_id",
        "prompt_version",
        "prompt_sha256",
        "prices",
        "served",
        "both_orders",
        "repeats",
        "weights",
        "fingerprint",
        "scale",
        "threshold",
        "params",
    }
    if combined:
        known |= {"method", "systems"}
    if info.get("api_key_env"):
        facts.append(("API key from", f"environment variable {info['api_key_env']}"))
    known.add("api_key_env")
    facts += [(_humanise(k).capitalize(), _flat(v)) for k, v in info.items() if k not in known]
    params = [(_humanise(k), _flat(v)) for k, v in (info.get("params") or {}).items()]
    return SystemCard(name, colour, type_label(kind), facts, params, prompt)


def _combined_facts(kind: str, block: Mapping[str, Any], info: Mapping[str, Any]) -> Pairs:
    """What a fused or cascade system is: a rule over other systems' answers, fitted on
    calibration half A of this run; it has no model file or weights of its own."""
    inputs = [str(s) for s in info.get("systems") or []]
    offered = ", ".join(inputs) or fmt.DASH
    if kind == "cascade":
        reid, lvlm = [*inputs, fmt.DASH, fmt.DASH][:2]
        method = (
            f"cascade: {reid} decides the pairs outside an uncertainty band around its "
            f"threshold, {lvlm} the pairs inside"
        )
        fitted = "band sized on calibration half A of this run; no weights of its own"
    else:
        method = (
            f"{info.get('method') or 'logistic'} regression on the scores (and failure flags) "
            "of its input systems"
        )
        fitted = "fitted on calibration half A of this run; no weights of its own"
    label = "Inputs" if kind == "cascade" else "Inputs offered"
    if kind != "cascade":
        offered += " (the ones kept are listed under Fusion)"
    return [("Method", method), (label, offered), ("Fitted", fitted)]


def prompt_text(info: Mapping[str, Any], config_prompt: str | None) -> PromptText | None:
    """The exact prompt text, when this reidbench can prove it is the text the run used.

    Bundled prompts are looked up by id, user prompt files by the path in the
    run's config; either way the text is shown only if its content hash equals
    the one recorded with the answers.
    """
    pid = info.get("prompt_id")
    if not pid:
        return None
    sha = str(info.get("prompt_sha256") or "")
    ident = f"{pid} v{scalar_text(info.get('prompt_version'))}"
    from reidbench.errors import UserError
    from reidbench.judges.prompts import bundled_prompt_ids, load_prompt

    source = None
    if config_prompt and config_prompt.endswith(".toml") and Path(config_prompt).is_file():
        source = config_prompt
    elif pid in bundled_prompt_ids():
        source = str(pid)
    if source is None:
        return PromptText(ident, sha, [], "the prompt file is not available here")
    try:
        prompt = load_prompt(source)
    except UserError as exc:
        return PromptText(ident, sha, [], f"the prompt could not be read ({exc})")
    if sha and prompt.sha256 != sha:
        return PromptText(
            ident,
            sha,
            [],
            "the prompt available here differs from the one the run used (content hash "
            "mismatch), so its text is not shown",
        )
    mode = str((info.get("params") or {}).get("image_mode") or "pair")
    if mode not in prompt.images:
        mode = next(iter(prompt.images))
    return PromptText(
        ident,
        sha or prompt.sha256,
        [
            ("System message", prompt.system),
            (f"User message ({mode} images)", prompt.user_text(mode)),
        ],
    )

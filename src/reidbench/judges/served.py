"""Which model version answered: what each provider reports, per answer and per system.

Aliases such as `gpt-4o` or `qwen-vl-max` move to new snapshots over time, and a
retired model may be answered by its replacement, so the name in the config is
not proof of what answered. Each reply's own report (the response's `model`,
OpenAI's `system_fingerprint`, Gemini's `model_version`) is kept with the answer
and summarised per system in run.json and the report; a run whose answers came
from more than one version says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

#: Schema-metadata key under which `judge_pairs` hands its summary to the experiment.
META_KEY = b"reidbench.served"
# Statuses that came from a reply (only those can report a version).
_REPLIED = ("ok", "refusal", "safety_block", "parse_error")


def reported_version(raw: Any) -> tuple[str | None, str | None]:
    """(model, fingerprint) a response body says answered; None where it says nothing."""
    if not isinstance(raw, Mapping):
        return None, None
    model = raw.get("model") or raw.get("model_version") or raw.get("modelVersion")
    fingerprint = raw.get("system_fingerprint")
    return (
        str(model) if isinstance(model, str) and model else None,
        str(fingerprint) if isinstance(fingerprint, str) and fingerprint else None,
    )


def served_summary(results: Iterable[Any]) -> dict[str, Any]:
    """Counts of the reported versions over a system's answers (JudgeResult-like objects)."""
    versions: Counter[str] = Counter()
    fingerprints: Counter[str] = Counter()
    unreported = 0
    for r in results:
        if r.status not in _REPLIED:
            continue
        model = getattr(r, "served_model", None)
        if model:
            versions[model] += 1
        else:
            unreported += 1
        fp = getattr(r, "served_fingerprint", None)
        if fp:
            fingerprints[fp] += 1
    return {
        "versions": dict(sorted(versions.items())),
        "fingerprints": dict(sorted(fingerprints.items())),
        "unreported": unreported,
        "mixed": len(versions) > 1,
    }


def attach(table: pa.Table, summary: Mapping[str, Any]) -> pa.Table:
    """The table with the summary in its schema metadata (the scores columns stay as they are)."""
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = json.dumps(summary, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def served_meta(table: pa.Table) -> dict[str, Any]:
    """`{"served": summary}` from a table made by `attach`, else `{}` (embedders, old runs)."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    return {"served": json.loads(raw)} if raw else {}


def record_served(manifest: dict[str, Any], name: str, meta: Mapping[str, Any]) -> None:
    """Copy a system's served summary (from its stored metadata) into run.json's entry."""
    served = meta.get("served")
    if not served:
        return
    for entry in manifest["systems"]:
        if entry["name"] == name:
            entry["served"] = served

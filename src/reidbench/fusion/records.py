"""Fusion records in the run directory: `fusion/<name>.json` (method, fitted parameters, split)
and `fusion/<name>.parquet` (the fused system's rows for held-out pairs, `SCORES_SCHEMA`).

The JSON is written after the rows, so a record exists only once it is complete. The
metrics stage reads these files back (`load_records`) and reports a fused system like any
other; a record whose inputs changed since it was fitted (a system re-run, other pairs) is
stale and is skipped with a reason instead of being reported against data it never saw.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from reidbench import __version__
from reidbench.config import CASCADE_FRACTIONS
from reidbench.errors import UserError
from reidbench.files import write_json_atomic
from reidbench.fusion.cascade import fuse_cascade
from reidbench.fusion.logistic import fuse_logistic
from reidbench.progress import Log, no_log
from reidbench.rundir import FUSED_SCALE, FUSION_FORMAT, RunDir, inputs_digest, open_run
from reidbench.rundir.halves import IDENTITY_RULE
from reidbench.tables import SCORES_SCHEMA, read_table, write_table

FORMAT = FUSION_FORMAT
SPLIT_RULE = "reidbench.rundir.RunDir.halves(): identity-disjoint halves; " + IDENTITY_RULE


def fusion_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "fusion"


def _stem(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def record_paths(run_dir: str | Path, name: str) -> tuple[Path, Path]:
    stem = _stem(name)
    return fusion_dir(run_dir) / f"{stem}.json", fusion_dir(run_dir) / f"{stem}.parquet"


def default_name(method: str, systems: list[str]) -> str:
    if method == "cascade":
        return f"cascade({systems[0]}>{systems[1]})"
    return f"{method}({'+'.join(systems)})"


def _split(data: RunDir, calib: np.ndarray) -> dict[str, Any]:
    y = data.label
    held = data.held_out(calib)
    return {
        "seed": data.seed,
        "rule": SPLIT_RULE,
        "n_calibration": int(calib.sum()),
        "halves": "identity",
        "n_across": int((~calib & ~held).sum()),
        "n_held_out": int(held.sum()),
        "n_calibration_same": int(y[calib].sum()),
        "n_held_out_same": int(y[held].sum()),
    }


def _rows(
    name: str,
    pair_ids: np.ndarray,
    score: np.ndarray,
    same: np.ndarray,
    cost: np.ndarray,
    tokens_in: np.ndarray,
    tokens_out: np.ndarray,
    reasons: list[str | None],
) -> pa.Table:
    n = int(pair_ids.size)
    return pa.table(
        {
            "pair_id": pa.array(pair_ids, pa.int64()),
            "system": pa.array([name] * n, pa.string()),
            "score": pa.array(score, pa.float64()),
            "decision": pa.array(np.where(same, "same", "different").tolist(), pa.string()),
            "status": pa.array(["ok"] * n, pa.string()),
            "latency_s": pa.nulls(n, pa.float64()),
            "tokens_in": pa.array(tokens_in, pa.int64()),
            "tokens_out": pa.array(tokens_out, pa.int64()),
            # The fusion itself makes no call: its cost is what its inputs' answers cost.
            "cost_usd": pa.array(cost, pa.float64()),
            "raw": pa.array([""] * n, pa.string()),
            "order": pa.array(["ab"] * n, pa.string()),
            "repeat": pa.array(np.zeros(n, np.int64)),
            "reasons": pa.array(reasons, pa.string()),
            "error": pa.nulls(n, pa.string()),
            "cached": pa.array([True] * n, pa.bool_()),
            "attempts": pa.array(np.zeros(n, np.int64)),
        },
        schema=SCORES_SCHEMA,
    )


def _check_name(data: RunDir, name: str) -> None:
    if name in data.systems:
        raise UserError(
            f"fusion name {name!r} is already a system of this run; pass another --name"
        )


def _pairs_hash(data: RunDir) -> str | None:
    return data.pairs_meta.get("content_hash")


def fit_logistic_record(
    data: RunDir,
    systems: list[str],
    *,
    name: str | None = None,
    cv_folds: int = 5,
    cs: int | list[float] = 10,
    calib: np.ndarray | None = None,
    select_inputs: bool = True,
) -> tuple[dict[str, Any], pa.Table]:
    """Fit the logistic fusion and return (record, held-out rows); nothing is written.

    The record keeps the requested `systems` (and the name made from them); `selection`
    says which inputs the fitted model kept. Costs, tokens and imputation reasons of the
    rows are those of the kept inputs: a dropped input is not needed to score a pair.
    """
    if name:
        _check_name(data, name)
    fused = fuse_logistic(
        data, systems, calib=calib, cv_folds=cv_folds, cs=cs, select=select_inputs
    )
    # named by the inputs it kept: a dropped input does not score a single pair
    name = name or default_name("logistic", list(fused.inputs))
    _check_name(data, name)
    calib = fused.calib
    held = np.flatnonzero(data.held_out(calib))
    views = [data.system(s) for s in fused.inputs]
    cost = np.nansum(np.stack([np.where(v.has_row, v.cost, 0.0) for v in views]), axis=0)
    t_in = np.sum(np.stack([v.tokens_in for v in views]), axis=0)
    t_out = np.sum(np.stack([v.tokens_out for v in views]), axis=0)
    failed = [",".join(v.name for v in views if not v.answered[i]) or None for i in range(data.n)]
    reasons = [f"imputed for failed: {f}" if f else None for f in failed]
    rows = _rows(
        name,
        data.pair_id[held],
        fused.prob[held],
        fused.prob[held] >= fused.threshold,
        cost[held],
        t_in[held],
        t_out[held],
        [reasons[i] for i in held],
    )
    record = {
        "method": "logistic",
        "systems": list(systems),
        "split": _split(data, calib),
        "selection": fused.selection.to_json(),
        "logistic": fused.record(),
        "threshold": fused.threshold,
    }
    return _finish(record, name, data, systems), rows


def fit_cascade_record(
    data: RunDir,
    reid: str,
    lvlm: str,
    *,
    name: str | None = None,
    fraction: float | None = None,
    budget_usd_per_1k: float | None = None,
    fractions: list[float] | tuple[float, ...] = CASCADE_FRACTIONS,
    live: bool = False,
    calib: np.ndarray | None = None,
) -> tuple[dict[str, Any], pa.Table]:
    """The cascade's curve and operating point, and the operating point's held-out rows."""
    name = name or default_name("cascade", [reid, lvlm])
    _check_name(data, name)
    asked = data.system(lvlm).entry.get("asked")
    if isinstance(asked, dict):  # the LVLM was asked only inside a live cascade's band
        live = True
        fraction = asked.get("fraction") if fraction is None else fraction
        if budget_usd_per_1k is None:
            budget_usd_per_1k = asked.get("budget_usd_per_1k")
    fused = fuse_cascade(
        data,
        reid,
        lvlm,
        fractions=list(fractions),
        fraction=fraction,
        budget_usd_per_1k=budget_usd_per_1k,
        live=live,
        calib=calib,
    )
    op = fused.operating
    held = np.flatnonzero(data.held_out(fused.calib))
    lv = data.system(lvlm)

    def why(i: int) -> str:
        if op.lvlm_decided[i]:
            return f"decided by {lvlm}"
        if op.lvlm_failed[i]:
            return f"decided by {reid}: {lvlm} failed ({lv.status[i]})"
        if op.not_asked[i]:
            return f"decided by {reid}: {lvlm} was not asked (budget)"
        return f"decided by {reid} (outside the band)"

    rows = _rows(
        name,
        data.pair_id[held],
        op.score[held],
        op.same[held],
        op.cost[held],
        op.tokens_in[held],
        op.tokens_out[held],
        [why(int(i)) for i in held],
    )
    body = fused.record_body
    body["accounting"] = _accounting(lv, held)
    record = {
        "method": "cascade",
        "systems": [reid, lvlm],
        "split": _split(data, fused.calib),
        "cascade": body,
        "threshold": 0.5,
    }
    return _finish(record, name, data, [reid, lvlm]), rows


def _accounting(lv, held: np.ndarray) -> dict[str, Any]:
    """What the LVLM's answers on held-out pairs cost, and what this run paid for them."""
    rows = lv.has_row[held]
    fresh = rows & ~lv.cached[held]
    billed = lv.cost[held][rows]
    return {
        "lvlm_rows_held_out": int(rows.sum()),
        "lvlm_calls_this_run": int(lv.attempts[held][fresh].sum()),
        "lvlm_usd_this_run": float(np.nansum(lv.cost[held][fresh])),
        "lvlm_usd_answers": float(np.nansum(billed)),
        "note": "calls = attempts (retries included) of rows not served from the response "
        "cache; USD from each answer's tokens and the system's prices",
    }


def _finish(record: dict[str, Any], name: str, data: RunDir, systems: list[str]) -> dict:
    entry = {
        "name": name,
        "type": "fusion" if record["method"] == "logistic" else "cascade",
        "method": record["method"],
        "systems": systems,
        "scale": FUSED_SCALE,
        "threshold": record.pop("threshold"),
        "fingerprint": inputs_digest(data, systems),
    }
    return {
        "format": FORMAT,
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reidbench_version": __version__,
        "inputs_digest": entry["fingerprint"],
        "pairs_content_hash": _pairs_hash(data),
        "entry": entry,
        "evaluated_on": "held-out",
        **record,
    }


def write_record(run_dir: str | Path, record: dict[str, Any], rows: pa.Table) -> dict[str, Any]:
    """Write the rows, then the JSON (the record is complete once its JSON exists);
    returns the record as written (with `rows_file`)."""
    json_path, rows_path = record_paths(run_dir, record["name"])
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_table(rows_path, rows, {"fusion": record["name"], "inputs": record["inputs_digest"]})
    record = {**record, "rows_file": f"fusion/{rows_path.name}"}
    write_json_atomic(json_path, record)
    return record


def load_records(
    run_dir: str | Path, *, seed: int | None = None
) -> tuple[list[tuple[dict[str, Any], pa.Table]], list[dict[str, str]]]:
    """Complete, current fusion records of a run: ([(record, rows)], [skipped with reason]).

    The reading and the staleness rules live in `reidbench.rundir` (`RunDir.fused`).
    """
    data = open_run(run_dir, seed=seed)
    records, skipped = data.fused()
    found = []
    for fused in records:
        rows_path = Path(run_dir) / str(fused.record.get("rows_file", ""))
        found.append((fused.record, read_table(rows_path, schema=SCORES_SCHEMA)))
    return found, skipped


def fuse_run(
    run_dir: str | Path,
    systems: list[str],
    *,
    method: str = "logistic",
    name: str | None = None,
    cv_folds: int = 5,
    cs: int | list[float] = 10,
    fraction: float | None = None,
    budget_usd_per_1k: float | None = None,
    fractions: list[float] | tuple[float, ...] = CASCADE_FRACTIONS,
    live: bool = False,
    select_inputs: bool = True,
    log: Log = no_log,
    force: bool = False,
) -> dict[str, Any]:
    """Fit a fusion on a run directory and write its record; returns the record.

    A record of the same name fitted with other settings is replaced only with `force`
    (refitting with unchanged settings, e.g. on resume, is not a replacement)."""
    if len(set(systems)) != len(systems):
        raise UserError(f"systems {systems}: a system is listed twice; list each once")
    settings = {
        "method": method,
        "systems": list(systems),
        **(
            {"cv_folds": cv_folds, "cs": cs, "select_inputs": select_inputs}
            if method == "logistic"
            else {
                "fraction": fraction,
                "budget_usd_per_1k": budget_usd_per_1k,
                "fractions": [float(f) for f in fractions],
                "live": live,
            }
        ),
    }
    _refuse_replacing(run_dir, name or default_name(method, list(systems)), settings, force)
    data = open_run(run_dir)
    if method == "logistic":
        record, rows = fit_logistic_record(
            data, systems, name=name, cv_folds=cv_folds, cs=cs, select_inputs=select_inputs
        )
        lg = record["logistic"]
        log(f"{record['name']}: {record['selection']['note']}")
        log(
            f"{record['name']}: C={lg['model']['C']:.3g}, threshold "
            f"{record['entry']['threshold']:.3f} (calibration F1 "
            f"{lg['threshold']['calibration_f1']:.3f}), {rows.num_rows} held-out pairs"
        )
    elif method == "cascade":
        if len(systems) != 2:
            raise UserError(
                f"--method cascade takes two systems, REID,LVLM (got {len(systems)}); "
                "e.g. --systems personvit-b,gpt-4o"
            )
        record, rows = fit_cascade_record(
            data,
            systems[0],
            systems[1],
            name=name,
            fraction=fraction,
            budget_usd_per_1k=budget_usd_per_1k,
            fractions=fractions,
            live=live,
        )
        op = record["cascade"]["operating_point"]
        log(
            f"{record['name']}: operating point sends {op['n_sent']}/{op['n']} held-out pairs "
            f"to {systems[1]} (F1 {_f(op['f1'])}, AUC {_f(op['auc'])}, "
            f"USD/1k {_f(op['usd_per_1000_pairs'])})"
        )
    else:
        raise UserError(f"unknown fusion method {method!r}; use logistic or cascade")
    record["settings"] = settings
    record = write_record(run_dir, record, rows)
    log(f"wrote {record_paths(run_dir, record['name'])[0]}")
    return record


def _refuse_replacing(run_dir: str | Path, name: str, settings: dict, force: bool) -> None:
    json_path, _ = record_paths(run_dir, name)
    if force or not json_path.is_file():
        return
    try:
        old = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return  # an unreadable record is skipped by the report anyway; replacing it is safe
    before = old.get("settings") if isinstance(old, dict) else None
    if before is None:  # a record from before settings were stored: compare what it has
        before = {"method": old.get("method"), "systems": old.get("systems")}
        now = {k: settings[k] for k in before}
    else:
        now = settings
    if before != now:
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        raise UserError(
            f"{json_path}: fused system {name!r} exists with other settings ({', '.join(changed)}"
            "); pass --force to replace it, --name NEW to keep both, or "
            f"`reidbench fuse {Path(run_dir)} --remove {name!r}` first"
        )


def remove_record(run_dir: str | Path, name: str) -> list[Path]:
    """Delete a fused system's record (JSON first, so it is never half there); returns files."""
    json_path, rows_path = record_paths(run_dir, name)
    if not json_path.is_file():
        names = []
        for path in sorted(fusion_dir(run_dir).glob("*.json")):
            try:
                names.append(str(json.loads(path.read_text(encoding="utf-8")).get("name")))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                continue
        raise UserError(
            f"{run_dir}: no fused system named {name!r}; fused systems here: "
            f"{', '.join(repr(n) for n in names) or 'none'}"
        )
    removed = []
    for path in (json_path, rows_path):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"

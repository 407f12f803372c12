"""The pre-flight's lifecycle check: refuse retired models and warn of deprecated ones.

A retired model answers every request with an error; finding that out after the
pairs are curated, the embedders have run and the other LVLMs are paid for wastes
the run. So this check reads only the configs and the preset table, and runs
before any work. It also applies each preset's capabilities: a default the model
would reject (temperature, seed) is left out, and one the user set explicitly is
refused, since the run could not honour it.
"""

from __future__ import annotations

from collections.abc import Iterable

from reidbench.config import LVLMSystemConfig
from reidbench.errors import UserError
from reidbench.judges.presets import Preset, preset_for, split_preset, successor_chain
from reidbench.progress import Log, no_log


def _lvlms(systems: Iterable[object]) -> list[LVLMSystemConfig]:
    return [s for s in systems if isinstance(s, LVLMSystemConfig)]


def preset_of(system: LVLMSystemConfig) -> Preset | None:
    """The documented preset this system resolves to (provider/model override the preset)."""
    family, model = split_preset(system.preset) if system.preset else ("", "")
    return preset_for(system.provider or family, system.model or model)


def _successor_text(preset: Preset) -> str:
    chain = successor_chain(preset.name)
    if not chain:
        return "no successor is known; choose a current model with `reidbench presets`"
    last = chain[-1]
    via = "".join(
        f" (its named successor {p.name} was itself retired on {p.lifecycle.date})"
        for p in chain[:-1]
    )
    state = "" if last.lifecycle.status == "active" else f", itself {last.lifecycle.status}"
    return f'use preset = "{last.name}"{via}{state}'


def lifecycle_problems(systems: Iterable[object]) -> list[str]:
    """One line per LVLM system that cannot run as configured: retired model, rejected setting."""
    problems: list[str] = []
    for system in _lvlms(systems):
        preset = preset_of(system)
        if preset is None:
            continue
        life = preset.lifecycle
        if life.status == "retired":
            problems.append(
                f"system {system.name!r}: {preset.name} was retired on {life.date} "
                f"({life.source}); {_successor_text(preset)}"
            )
            continue
        cap = preset.capabilities
        if (
            not cap.temperature
            and "temperature" in system.model_fields_set
            and system.temperature is not None
        ):
            problems.append(
                f"system {system.name!r}: {preset.name} rejects a temperature; "
                "remove temperature from its config (the model samples at its own default)"
            )
    return problems


def lifecycle_warnings(systems: Iterable[object]) -> list[str]:
    """One line per LVLM system on a deprecated model (it still answers, until its date)."""
    warnings: list[str] = []
    for system in _lvlms(systems):
        preset = preset_of(system)
        if preset is None:
            continue
        life = preset.lifecycle
        if life.status == "deprecated":
            warnings.append(
                f"warning: system {system.name!r}: {preset.name} is deprecated and shuts down "
                f"on {life.date} ({life.source}); {_successor_text(preset)}"
            )
        cap = preset.capabilities
        if not cap.seed and "seed" in system.model_fields_set and system.seed is not None:
            warnings.append(
                f"warning: system {system.name!r}: {preset.name} takes no seed; seed is ignored"
            )
    return warnings


def check_lifecycle(systems: Iterable[object], log: Log = no_log) -> None:
    """Log the warnings; raise one UserError listing every problem (one line each)."""
    systems = list(systems)
    for line in lifecycle_warnings(systems):
        log(line)
    problems = lifecycle_problems(systems)
    if problems:
        raise UserError("\n".join(problems))


def effective_config(system: LVLMSystemConfig, client: str) -> LVLMSystemConfig:
    """The config as sent: defaults the model rejects left out, its required fields filled in.

    Only unset (default) values are dropped here; explicit ones are refused by
    `lifecycle_problems`. The max-tokens field name and the structured-output
    mechanism a model needs go into `extra` unless the config chose its own.
    """
    preset = preset_of(system)
    if preset is None:
        return system
    cap = preset.capabilities
    update: dict[str, object] = {}
    if not cap.temperature and system.temperature is not None:
        update["temperature"] = None
    if not cap.seed and system.seed is not None:
        update["seed"] = None
    extra = dict(system.extra)
    if client == "openai" and cap.max_tokens_param != "max_tokens":
        extra.setdefault("max_tokens_param", cap.max_tokens_param)
    if cap.structured_mode and system.structured != "off":
        extra.setdefault("structured_mode", cap.structured_mode)
    if extra != system.extra:
        update["extra"] = extra
    return system.model_copy(update=update) if update else system

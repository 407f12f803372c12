"""The example configs load, and `reidbench demo` runs exactly what configs/demo.toml says."""

from __future__ import annotations

from pathlib import Path

import pytest

from reidbench.config import LVLMSystemConfig, load_config
from reidbench.demo import demo_config
from reidbench.errors import UserError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_example_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.systems
    for system in cfg.systems:
        if isinstance(system, LVLMSystemConfig):
            from reidbench.judges import resolve_system

            resolved = resolve_system(system)
            assert resolved.model


def test_paper_config_has_the_studys_four_lvlms_and_personvit() -> None:
    cfg = load_config(CONFIGS / "paper-market1501.toml")
    presets = {s.preset for s in cfg.systems if isinstance(s, LVLMSystemConfig)}
    assert presets == {
        "openai:gpt-4o",
        "gemini:gemini-2.0-flash",
        "anthropic:claude-3-5-sonnet-latest",
        "dashscope:qwen-vl-max",
    }
    assert any(getattr(s, "model", None) == "personvit-b" for s in cfg.systems)


def test_demo_toml_matches_the_demo_command() -> None:
    from_file = load_config(CONFIGS / "demo.toml")
    built = demo_config(from_file.dataset.root)
    assert built.model_dump() == from_file.model_dump()


def test_bad_config_is_one_clear_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[dataset]\nroot = "x"\n[[systems]]\nname = "a"\ntype = "reid"\nmodle = "x"\n')
    with pytest.raises(UserError, match=r"bad\.toml: systems\.0"):
        load_config(bad)
    bad.write_text("[dataset\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "missing.toml")

"""docs/extending.md: every example runs as written, entry-point plugins included."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import reidbench.datasets.registry as dataset_registry
import reidbench.judges.presets as presets
import reidbench.judges.providers.registry as provider_registry
import reidbench.models as models
import reidbench.plugins as plugins
from reidbench.datasets import DatasetFormat, register_dataset_format
from reidbench.errors import UserError
from reidbench.metrics import specs

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", re.DOTALL)


@pytest.fixture
def clean_registries(monkeypatch, tmp_path):
    """Examples register into the real tables; restore them (and sys.path) afterwards."""
    monkeypatch.setattr(dataset_registry, "_FORMATS", dict(dataset_registry._FORMATS))
    monkeypatch.setattr(provider_registry, "_PROVIDERS", dict(provider_registry._PROVIDERS))
    monkeypatch.setattr(presets, "FAMILIES", dict(presets.FAMILIES))
    monkeypatch.setattr(provider_registry, "FAMILIES", presets.FAMILIES)
    import reidbench.judges.settings as settings

    monkeypatch.setattr(settings, "FAMILIES", presets.FAMILIES)
    monkeypatch.setattr(models, "EMBEDDERS", dict(models.EMBEDDERS))
    monkeypatch.setattr(specs, "METRIC_SPECS", list(specs.METRIC_SPECS))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    plugins.reset()
    yield tmp_path
    plugins.reset()
    for name in [m for m in sys.modules if m.startswith("reidbench_")]:
        del sys.modules[name]


def test_every_extension_example_runs(clean_registries):
    examples = EXAMPLE.findall(DOC.read_text(encoding="utf-8"))
    assert [name for name, _ in examples] == [
        "dataset",
        "embedder",
        "provider",
        "entry-point",
        "metric",
    ]
    namespace: dict[str, object] = {"__name__": "extending_example"}
    for name, code in examples:
        exec(compile(code, f"{DOC}:{name}", "exec"), namespace)
    assert "pid-folders" in dataset_registry.dataset_formats()
    assert models.EMBEDDERS["brightness-plugin"].summary == "from a plugin"


def _dist(site: Path, name: str, group: str, entry: str, module: str) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")
    (site / f"{name}.py").write_text(module)


def test_dataset_plugin_is_loaded_once_and_detects(clean_registries, tmp_path, monkeypatch):
    _dist(
        tmp_path / "site",
        "reidbench_flat",
        "reidbench.datasets",
        "flat = reidbench_flat:register",
        "from reidbench.datasets import Dataset, DatasetFormat, Detection\n"
        "from reidbench.datasets import register_dataset_format\n"
        "CALLS = []\n"
        "def register():\n"
        "    CALLS.append(1)\n"
        "    register_dataset_format(DatasetFormat('flat', 'Flat', lambda p, o, g: Dataset("
        "'flat', p, [], [], [], 1), detect=lambda p: Detection('flat', 'FLAT marker') "
        "if (p / 'FLAT').exists() else None, priority=5))\n",
    )
    monkeypatch.syspath_prepend(tmp_path / "site")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "FLAT").write_text("")
    from reidbench.datasets import FORMATS, load_dataset

    assert "flat" in FORMATS  # the live registry, plugin included
    ds = load_dataset(tmp_path / "d")
    assert (ds.name, ds.extra["detected_by"]) == ("flat", "FLAT marker")
    load_dataset(tmp_path / "d", "flat")
    assert sys.modules["reidbench_flat"].CALLS == [1]


def test_broken_plugin_is_one_user_error(clean_registries, tmp_path, monkeypatch):
    _dist(
        tmp_path / "site",
        "reidbench_broken",
        "reidbench.providers",
        "broken = reidbench_broken:register",
        "def register():\n    raise RuntimeError('boom')\n",
    )
    monkeypatch.syspath_prepend(tmp_path / "site")
    with pytest.raises(UserError, match=r"plugin 'broken' .*reidbench.providers.*boom"):
        provider_registry.get_provider("openai")


def test_taken_names_need_replace(clean_registries):
    spec = dataset_registry.get_dataset_format("market")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset_format(DatasetFormat("m2", "M2", spec.load, aliases=("market",)))
    with pytest.raises(ValueError, match="already registered"):
        models.register_embedder(models.EMBEDDERS["personvit-s"])
    with pytest.raises(ValueError, match="already registered"):
        provider_registry.register_provider(provider_registry.get_provider("openai"))
    with pytest.raises(ValueError, match="structured_modes"):
        provider_registry.register_provider(
            provider_registry.ProviderSpec("x", lambda s, k, t: None, (), structured_auto="tool")
        )


def test_dataset_options_are_typed_and_checked(clean_registries):
    from reidbench.datasets.detect import get_dataset_format

    spec = get_dataset_format("CUHK-03")
    assert dataset_registry.parse_options(spec, {"variant": "labeled"}).variant == "labeled"
    with pytest.raises(UserError, match=r"variant: .*its options are variant"):
        dataset_registry.parse_options(spec, {"variant": "both"})
    with pytest.raises(UserError, match=r"colour: Extra inputs.*its options are variant"):
        dataset_registry.parse_options(spec, {"colour": "red"})
    msmt = get_dataset_format("msmt17")
    assert dataset_registry.parse_options(msmt, {"val_in_train": "false"}).val_in_train is False
    assert dataset_registry.parse_option_pairs(["variant = labeled", "a=b=c"]) == {
        "variant": "labeled",
        "a": "b=c",
    }
    with pytest.raises(UserError, match="not KEY=VALUE"):
        dataset_registry.parse_option_pairs(["variant"])


def test_structured_modes_come_from_the_provider_spec():
    from reidbench.config import LVLMSystemConfig
    from reidbench.judges.settings import resolve_system

    mode = {"structured_mode": "output_config"}
    ok = LVLMSystemConfig(name="a", type="lvlm", preset="anthropic:claude-x", extra=mode)
    assert resolve_system(ok).structured == "output_config"
    bad = ok.model_copy(update={"extra": {"structured_mode": "json_schema"}})
    with pytest.raises(UserError, match=r"choose one of \['tool', 'output_config'\]"):
        resolve_system(bad)

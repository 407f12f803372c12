"""Prompts are versioned data files (`prompts/*.toml`), never strings in code.

A prompt has an id and a version, recorded with every answer, and a content
hash that also enters the cache key, so an edited prompt whose version was
not bumped still never reuses answers to the old text.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from reidbench.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# "probability": a one-word yes/no answer scored by its first token's log-probabilities
# (judges/logprobs.py); no structured output, so its schema is optional.
ANSWER_KINDS = ("score", "decision", "choice", "probability")
IMAGE_MODES = ("pair", "composite")
_REQUIRED = ("id", "version", "answer", "system", "task", "format", "images", "schema")


@dataclass(frozen=True)
class Prompt:
    id: str
    version: str
    # "score": the model gives a 0-100 score; "decision": same/different + confidence;
    # "choice": the label of the one candidate showing the query's person (multiple choice);
    # "probability": yes/no, scored 100 * P(yes) / (P(yes) + P(no)) from log-probabilities
    answer: str
    system: str
    task: str
    format: str
    images: dict[str, str]  # image mode -> sentence that says which image is A and which is B
    schema: dict[str, Any]  # JSON schema of the answer object
    description: str = ""
    source: str = ""  # bundled file name or user path (provenance only)
    sha256: str = field(default="", compare=False)
    options: tuple[str, ...] = ()  # a choice prompt's candidate labels, once `for_options` set

    def for_options(self, labels: list[str]) -> Prompt:
        """A choice prompt for candidates named `labels`: "{n}", "{labels}" and "{last}" in
        its texts are filled in, the schema's `answer` is restricted to the labels, and the
        content hash (part of the cache key) covers the filled-in texts."""
        if self.answer != "choice":
            raise UserError(f"prompt {self.id!r} is not a multiple-choice prompt (answer=choice)")

        def fill(text: str) -> str:
            return (
                text.replace("{n}", str(len(labels)))
                .replace("{labels}", ", ".join(labels))
                .replace("{last}", labels[-1])
            )

        schema = self.json_schema()
        answer = schema.get("properties", {}).get("answer")
        if isinstance(answer, dict):
            answer["enum"] = list(labels)
        images = {k: fill(v) for k, v in self.images.items()}
        content = {
            "base": self.sha256,
            "labels": list(labels),
            "texts": [fill(self.system), fill(self.task), fill(self.format), images],
        }
        sha = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return dataclasses.replace(
            self,
            system=fill(self.system),
            task=fill(self.task),
            format=fill(self.format),
            images=images,
            schema=schema,
            sha256=sha,
            options=tuple(labels),
        )

    def user_text(self, image_mode: str) -> str:
        """The user message text for an image mode (images are attached by the provider)."""
        return "\n\n".join((self.images[image_mode], self.task, self.format))

    def json_schema(self) -> dict[str, Any]:
        return copy.deepcopy(self.schema)


def _clean(text: str) -> str:
    return text.strip()


def _from_data(data: dict[str, Any], source: str) -> Prompt:
    if data.get("answer") == "probability":
        data = {"schema": {}, **data}  # answered in one word: no JSON schema to enforce
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise UserError(f"{source}: prompt file lacks {missing}; see docs/judges.md for the format")
    if data["answer"] not in ANSWER_KINDS:
        raise UserError(f"{source}: answer must be one of {ANSWER_KINDS}, not {data['answer']!r}")
    images = {k: _clean(v) for k, v in dict(data["images"]).items()}
    lacking = [m for m in IMAGE_MODES if m not in images]
    if lacking:
        raise UserError(f"{source}: [images] lacks {lacking}; give the text for each image mode")
    schema = dict(data["schema"])
    props = schema.get("properties", {})
    needed = {
        "score": ("score",),
        "decision": ("decision", "confidence"),
        "choice": ("answer",),
        "probability": (),
    }[data["answer"]]
    if data["answer"] == "probability":
        if schema:
            raise UserError(f"{source}: a probability prompt has no [schema]; remove it")
    elif schema.get("type") != "object" or any(k not in props for k in needed):
        raise UserError(
            f"{source}: [schema] must be an object schema with properties {list(needed)}"
        )
    content = {k: data[k] for k in _REQUIRED}
    sha = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return Prompt(
        id=str(data["id"]),
        version=str(data["version"]),
        answer=str(data["answer"]),
        system=_clean(data["system"]),
        task=_clean(data["task"]),
        format=_clean(data["format"]),
        images=images,
        schema=schema,
        description=str(data.get("description", "")),
        source=source,
        sha256=sha,
    )


def _parse(text: str, source: str) -> Prompt:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{source}: not valid TOML ({exc}); fix the prompt file") from exc
    return _from_data(data, source)


def bundled_prompt_ids() -> list[str]:
    """Ids of the prompts shipped with reidbench."""
    folder = resources.files("reidbench.judges").joinpath("prompts")
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_prompt(name: str) -> Prompt:
    """A bundled prompt by id (e.g. "similarity-0-100"), or a user prompt file by path."""
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{path}: prompt file not found; give a bundled prompt id or a path")
        return _parse(path.read_text(encoding="utf-8"), str(path))
    ids = bundled_prompt_ids()
    if name not in ids:
        raise UserError(
            f"unknown prompt {name!r}; choose one of {ids} or give a path to a prompt .toml file"
        )
    text = (
        resources.files("reidbench.judges")
        .joinpath("prompts")
        .joinpath(f"{name}.toml")
        .read_text("utf-8")
    )
    prompt = _parse(text, f"{name}.toml")
    if prompt.id != name:
        raise UserError(f"{name}.toml: its id is {prompt.id!r}; the id must match the file name")
    return prompt

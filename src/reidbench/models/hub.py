"""Weights from the Hugging Face Hub, pinned to a commit and checked by sha256.

A weights argument (`--weights`) is one of:

- `PATH` — a local checkpoint file (the offline way, always available);
- `hf://OWNER/REPO/FILE/IN/REPO@COMMIT#sha256=HEX` — a file on the Hub pinned by
  the user: downloaded with `huggingface_hub.hf_hub_download(revision=COMMIT)`
  into the usual Hub cache, then its sha256 must equal HEX;
- `hub:VARIANT` — an entry of `KNOWN_WEIGHTS` below (e.g. `hub:market`).

`KNOWN_WEIGHTS` records where the released PersonViT weights live. This project
was written without network access to the Hub, so no entry's commit and sha256
have been checked by us: each is marked `verified=False`, and using one stops
with a message saying how to pass `--weights PATH` or pin the file yourself.
When someone has downloaded a file and checked it, filling in `revision` and
`sha256` and setting `verified=True` turns the entry on; nothing else changes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from reidbench.errors import UserError
from reidbench.files import sha256_file

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HF_SPEC = re.compile(
    r"^hf://(?P<repo>[^/@#]+/[^/@#]+)/(?P<file>[^@#]+)@(?P<rev>[^#]+)#sha256=(?P<sha>.+)$"
)


@dataclass(frozen=True)
class HubWeights:
    model: str  # embedder name it fits
    variant: str  # "market", "msmt17", "duke", "occ_duke", "lup-ssl"
    repo_id: str
    filename: str
    revision: str | None  # 40-hex commit, None when unknown
    sha256: str | None  # of the file, None when unknown
    verified: bool  # True only when revision and sha256 were checked against the Hub
    source: str  # where the entry's facts come from

    def spec(self) -> str:
        """The hf:// pin for this file; unchecked facts are left as placeholders."""
        rev = self.revision if self.verified and self.revision else "<COMMIT>"
        sha = self.sha256 if self.verified and self.sha256 else "<SHA256>"
        return f"hf://{self.repo_id}/{self.filename}@{rev}#sha256={sha}"


_REID_REPO = "lakeAGI/PersonViTReID"
_SSL_REPO = "lakeAGI/PersonViT"
# Commit of lakeAGI/PersonViTReID seen in a third-party export script (PINTO0309/PersonViT,
# export_onnx.py); not checked against the Hub by us, hence verified=False.
_REID_REV_UNVERIFIED = "20bc52b77acb97e034fcb526b0fa109bb491306d"


def _reid(model: str, arch: str, epoch: int, dataset: str, variant: str) -> HubWeights:
    return HubWeights(
        model=model,
        variant=variant,
        repo_id=_REID_REPO,
        filename=f"{dataset}.{arch}.lup.256x128.wopt.csk.4-8.ar.375.n8.e0{epoch}/transformer_120.pth",
        revision=_REID_REV_UNVERIFIED,
        sha256=None,
        verified=False,
        source="file layout from the PersonViT README and a third-party export script",
    )


def _ssl(model: str, arch: str, epoch: int) -> HubWeights:
    return HubWeights(
        model=model,
        variant="lup-ssl",
        repo_id=_SSL_REPO,
        filename=f"{arch}.lup.256x128.wopt.csk.4-8.ar.375.n8/checkpoint0{epoch}.pth",
        revision=None,
        sha256=None,
        verified=False,
        source="hustvl/PersonViT README download links",
    )


KNOWN_WEIGHTS: dict[tuple[str, str], HubWeights] = {
    (w.model, w.variant): w
    for w in [
        _reid("personvit-s", "vits", 220, "market", "market"),
        _reid("personvit-s", "vits", 220, "msmt", "msmt17"),
        _reid("personvit-s", "vits", 220, "duke", "duke"),
        _reid("personvit-s", "vits", 220, "occ_duke", "occ_duke"),
        _reid("personvit-b", "vitb", 260, "market", "market"),
        _reid("personvit-b", "vitb", 260, "msmt", "msmt17"),
        _reid("personvit-b", "vitb", 260, "duke", "duke"),
        _reid("personvit-b", "vitb", 260, "occ_duke", "occ_duke"),
        _ssl("personvit-s", "vits", 220),
        _ssl("personvit-b", "vitb", 260),
    ]
}
DEFAULT_VARIANT = "market"  # the study evaluates on Market-1501


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _offline_hint(model: str) -> str:
    return (
        f"download the checkpoint on a connected machine and pass --weights PATH "
        f"(docs/models.md lists the files for {model})"
    )


def resolve_weights(
    model: str,
    weights: str | os.PathLike[str] | None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
) -> Path:
    """Turn a weights argument into a local, checked file path (downloading if pinned)."""
    if weights is None:
        entry = KNOWN_WEIGHTS.get((model, DEFAULT_VARIANT))
        if entry is None:
            raise UserError(f"{model} needs weights; pass --weights PATH")
        return _known(entry, cache_dir=cache_dir, endpoint=endpoint, implicit=True)
    text = os.fspath(weights)
    if text.startswith("hf://"):
        m = _HF_SPEC.match(text)
        if not m:
            raise UserError(
                f"--weights {text!r}: expected hf://OWNER/REPO/FILE@COMMIT#sha256=HEX "
                "(a pinned 40-hex commit and the file's sha256)"
            )
        return download_pinned(
            m["repo"],
            m["file"],
            m["rev"],
            m["sha"],
            model=model,
            cache_dir=cache_dir,
            endpoint=endpoint,
        )
    if text.startswith("hub:"):
        variant = text[len("hub:") :]
        entry = KNOWN_WEIGHTS.get((model, variant))
        if entry is None:
            options = sorted(v for (m, v) in KNOWN_WEIGHTS if m == model)
            raise UserError(
                f"--weights {text!r}: no known Hub weights {variant!r} for {model}; "
                f"choose one of {options} or pass --weights PATH"
            )
        return _known(entry, cache_dir=cache_dir, endpoint=endpoint, implicit=False)
    path = Path(text).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: weights file not found; pass --weights PATH to a checkpoint file")
    return path


def _known(entry: HubWeights, *, cache_dir: object, endpoint: str | None, implicit: bool) -> Path:
    if not entry.verified or entry.revision is None or entry.sha256 is None:
        lead = f"{entry.model} needs weights: the default" if implicit else "the"
        raise UserError(
            f"{lead} Hub entry {entry.model}/{entry.variant} ({entry.repo_id}: {entry.filename}) "
            "has no verified commit and sha256 in reidbench, so it is not downloaded; "
            f"{_offline_hint(entry.model)}, or pin it yourself with --weights {entry.spec()}"
        )
    return download_pinned(
        entry.repo_id,
        entry.filename,
        entry.revision,
        entry.sha256,
        model=entry.model,
        cache_dir=cache_dir,
        endpoint=endpoint,
    )


def download_pinned(
    repo_id: str,
    filename: str,
    revision: str,
    sha256: str,
    *,
    model: str,
    cache_dir: object = None,
    endpoint: str | None = None,
) -> Path:
    """hf_hub_download at a pinned commit, then a sha256 check; errors are one line."""
    revision, sha256 = revision.lower(), sha256.lower()
    where = f"{repo_id}/{filename}@{revision}"
    if not _HEX40.match(revision):
        raise UserError(
            f"{where}: revision must be a full 40-hex commit id (branches and tags move); "
            "copy it from the file's history page on the Hub"
        )
    if not _HEX64.match(sha256):
        raise UserError(f"{where}: sha256 must be 64 hex digits; run sha256sum on the file")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        local = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,  # type: ignore[arg-type]
            endpoint=endpoint,
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise UserError(
            f"{where}: cannot reach the Hugging Face Hub and the file is not in the local "
            f"cache (offline); {_offline_hint(model)}"
        ) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise UserError(
            f"{where}: repository or commit not found on the Hub; check the hf:// spec"
        ) from exc
    except EntryNotFoundError as exc:
        raise UserError(f"{where}: no such file at that commit; check the path") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise UserError(
            f"{where}: download failed ({_first_line(exc)}); {_offline_hint(model)}"
        ) from exc
    path = Path(local)
    actual = sha256_file(path)
    if actual != sha256:
        raise UserError(
            f"{where}: sha256 mismatch (file {actual}, pinned {sha256}); the downloaded file "
            f"({path}) is not the pinned one; delete it and check the pin"
        )
    return path

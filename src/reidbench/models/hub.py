"""Weights from the Hugging Face Hub, from pinned URLs, or from a local file.

A weights argument (`--weights`) is one of:

- `PATH` — a local checkpoint file (the offline way, always available);
- `hf://OWNER/REPO/FILE/IN/REPO@COMMIT#sha256=HEX` — a file on the Hub pinned by
  the user: downloaded with `huggingface_hub.hf_hub_download(revision=COMMIT)`
  into the usual Hub cache, then its sha256 must equal HEX;
- `https://HOST/.../FILE#sha256=HEX` — a file at a URL (GitHub Releases), see
  `reidbench.models.weights_url`;
- `hub:VARIANT` — an entry of `KNOWN_WEIGHTS` below (e.g. `hub:market`).

`KNOWN_WEIGHTS` records where the released PersonViT weights live. This project
was written without network access to the Hub, so no entry's commit and sha256
have been checked by us (`verified=False`). Such an entry still downloads on
first use: its revision (default `main`) is resolved to a commit, the file is
hashed, and the pin that reproduces it (`hf://REPO/FILE@COMMIT#sha256=HEX`) is
printed and recorded in `Embedder.info["weights_pin"]` (hence `run.json`). The
Hub cache keeps the file, so later runs reuse it, offline too. `require_pinned`
(`--require-pinned`, config `require_pinned = true`) refuses unpinned entries.
A pinned file whose sha256 differs is always an error.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reidbench.errors import UserError
from reidbench.files import sha256_file
from reidbench.models.weights_url import URL_SPEC_HELP, download_url, is_url_spec

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
    ref: str = "main"  # branch or tag resolved to a commit when the entry is not verified

    def spec(self) -> str:
        """The hf:// pin for this file; unchecked facts are left as placeholders."""
        rev = self.revision if self.verified and self.revision else "<COMMIT>"
        sha = self.sha256 if self.verified and self.sha256 else "<SHA256>"
        return f"hf://{self.repo_id}/{self.filename}@{rev}#sha256={sha}"


_REID_REPO = "lakeAGI/PersonViTReID"
_SSL_REPO = "lakeAGI/PersonViT"
# Commit of lakeAGI/PersonViTReID seen in a third-party export script (PINTO0309/PersonViT,
# export_onnx.py); not checked against the Hub by us, hence verified=False. It is kept as
# a record only: an unverified entry is resolved from its `ref` ("main"), which exists for
# sure, and the commit that resolution finds is the one announced and recorded.
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


@dataclass(frozen=True)
class ResolvedWeights:
    """A local weights file and how it was obtained (for `Embedder.info` and run.json)."""

    path: Path
    sha256: str | None  # known after a download or check; None for a plain local path
    pin: str | None  # spec that reproduces the file exactly; None for a local path
    source: str  # "file" | "hub" | "url"


_REQUIRE_PINNED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reidbench_require_pinned", default=False
)


@contextlib.contextmanager
def pinning_required(required: bool = True) -> Iterator[None]:
    """Within this block, unpinned Hub entries are refused instead of resolved.

    A context variable rather than a loader option, so every embedder that calls
    `resolve_weights` honours it without a new parameter (see `load_embedder`)."""
    token = _REQUIRE_PINNED.set(required)
    try:
        yield
    finally:
        _REQUIRE_PINNED.reset(token)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _offline_hint(model: str) -> str:
    return (
        f"download the checkpoint on a connected machine and pass --weights PATH "
        f"(docs/models.md lists the files for {model})"
    )


def announce_pin(pin: str) -> None:
    """Tell the user the exact spec that reproduces an unpinned download (stderr)."""
    print(f"weights: resolved to {pin} (pass it as --weights to pin it)", file=sys.stderr)


def resolve_weights(
    model: str,
    weights: str | os.PathLike[str] | None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
) -> Path:
    """Turn a weights argument into a local, checked file path (downloading if needed)."""
    return fetch_weights(model, weights, cache_dir=cache_dir, endpoint=endpoint).path


def fetch_weights(
    model: str,
    weights: str | os.PathLike[str] | None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
) -> ResolvedWeights:
    """`resolve_weights` plus provenance: the file's sha256 and the pin that reproduces it."""
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
        path = download_pinned(
            m["repo"],
            m["file"],
            m["rev"],
            m["sha"],
            model=model,
            cache_dir=cache_dir,
            endpoint=endpoint,
        )
        return ResolvedWeights(path, m["sha"].lower(), text, "hub")
    if is_url_spec(text):
        path, sha = download_url(text, model=model)
        return ResolvedWeights(path, sha, text, "url")
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
    if "://" in text:
        raise UserError(f"--weights {text!r}: unsupported address; {URL_SPEC_HELP}")
    path = Path(text).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: weights file not found; pass --weights PATH to a checkpoint file")
    return ResolvedWeights(path, None, None, "file")


def _known(
    entry: HubWeights, *, cache_dir: object, endpoint: str | None, implicit: bool
) -> ResolvedWeights:
    pinned = entry.verified and entry.revision is not None and entry.sha256 is not None
    if pinned:
        assert entry.revision is not None and entry.sha256 is not None
        path = download_pinned(
            entry.repo_id,
            entry.filename,
            entry.revision,
            entry.sha256,
            model=entry.model,
            cache_dir=cache_dir,
            endpoint=endpoint,
        )
        return ResolvedWeights(path, entry.sha256, entry.spec(), "hub")
    if _REQUIRE_PINNED.get():
        lead = f"{entry.model} needs weights: the default" if implicit else "the"
        raise UserError(
            f"{lead} Hub entry {entry.model}/{entry.variant} ({entry.repo_id}: {entry.filename}) "
            "has no verified commit and sha256 in reidbench and pinned weights are required "
            f"(--require-pinned), so it is not downloaded; {_offline_hint(entry.model)}, "
            f"or pin it yourself with --weights {entry.spec()}"
        )
    return download_unpinned(
        entry.repo_id,
        entry.filename,
        entry.ref,
        model=entry.model,
        cache_dir=cache_dir,
        endpoint=endpoint,
    )


def _snapshot_commit(path: Path, filename: str) -> str:
    """The commit a Hub-cache file belongs to: the cache stores each file as
    `.../snapshots/<commit>/<filename>` (huggingface_hub's documented layout)."""
    parts = path.parts
    depth = len(Path(filename).parts)
    return parts[-depth - 1].lower() if len(parts) > depth else ""


def download_unpinned(
    repo_id: str,
    filename: str,
    ref: str,
    *,
    model: str,
    cache_dir: object = None,
    endpoint: str | None = None,
) -> ResolvedWeights:
    """Download the file at branch/tag `ref`, name its commit and sha256, announce the pin.

    `hf_hub_download(revision=ref)` resolves the ref to a commit and records it in the
    Hub cache, so offline (HF_HUB_OFFLINE=1, or the Hub unreachable) the same file is
    found again from the cache: a file fetched once keeps working."""
    path = _hf_download(repo_id, filename, ref, model, cache_dir, endpoint)
    commit = _snapshot_commit(path, filename)
    if not _HEX40.match(commit):
        raise UserError(
            f"{repo_id}/{filename}@{ref}: cannot tell which commit the file came from "
            f"({path}); pin it with --weights hf://{repo_id}/{filename}@COMMIT#sha256=HEX"
        )
    sha = sha256_file(path)
    pin = f"hf://{repo_id}/{filename}@{commit}#sha256={sha}"
    announce_pin(pin)
    return ResolvedWeights(path, sha, pin, "hub")


def _hf_download(
    repo_id: str,
    filename: str,
    revision: str,
    model: str,
    cache_dir: object,
    endpoint: str | None,
) -> Path:
    """hf_hub_download of one file at a commit; every failure is a one-line UserError."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}/{filename}@{revision}"
    try:
        local = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=None if cache_dir is None else str(cache_dir),
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
        raise UserError(
            f"{where}: no such file at that revision; check the path, or {_offline_hint(model)}"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise UserError(
            f"{where}: download failed ({_first_line(exc)}); {_offline_hint(model)}"
        ) from exc
    return Path(local)


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
    path = _hf_download(repo_id, filename, revision, model, cache_dir, endpoint)
    actual = sha256_file(path)
    if actual != sha256:
        raise UserError(
            f"{where}: sha256 mismatch (file {actual}, pinned {sha256}); the downloaded file "
            f"({path}) is not the pinned one; delete it and check the pin"
        )
    return path

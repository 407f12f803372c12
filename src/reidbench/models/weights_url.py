"""Weights at a URL pinned by sha256: `https://HOST/PATH/FILE#sha256=HEX`.

This is how fast-reid and other projects publish checkpoints (GitHub Releases).
The file goes into torch's standard checkpoint cache
(`$TORCH_HOME/hub/checkpoints`, i.e. `torch.hub.get_dir()/checkpoints`, where
`torch.hub.load_state_dict_from_url` keeps its files), downloaded with
`torch.hub.download_url_to_file`: a progress bar on stderr, a `.partial` file
renamed into place only after the whole body arrived and its sha256 matched, so
an interrupted or wrong download never looks complete. A cached file is reused
after its sha256 is checked again.

Google Drive links (torchreid's, CLIP-ReID's and TransReID's hosting) are
refused: Drive serves an HTML confirmation page for large files, and scraping
it is brittle; download such files in a browser and pass `--weights PATH`.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
from pathlib import Path
from urllib.parse import unquote, urlsplit

from reidbench.errors import UserError
from reidbench.files import sha256_file

URL_SPEC_HELP = (
    "pass a local PATH, hf://OWNER/REPO/FILE@COMMIT#sha256=HEX or https://HOST/FILE#sha256=HEX"
)
_URL_SPEC = re.compile(r"^(?P<url>https?://[^#\s]+)#sha256=(?P<sha>[^#\s]*)$", re.IGNORECASE)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


def is_url_spec(text: str) -> bool:
    """True for anything that looks like an http(s) address (checked by `download_url`)."""
    return text.lower().startswith(("https://", "http://"))


def url_cache_dir() -> Path:
    """torch's checkpoint cache: `$TORCH_HOME/hub/checkpoints` (default ~/.cache/torch)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _parse(spec: str) -> tuple[str, str]:
    m = _URL_SPEC.match(spec)
    host = (urlsplit(spec).hostname or "").lower()
    if host in _DRIVE_HOSTS:
        raise UserError(
            f"--weights {spec.split('#')[0]!r}: Google Drive links are not downloaded "
            "(no page scraping); download the file in a browser and pass --weights PATH"
        )
    if not m:
        raise UserError(
            f"--weights {spec!r}: a URL needs the file's sha256 after it "
            "(https://HOST/FILE#sha256=HEX; run sha256sum on a copy you trust)"
        )
    sha = m["sha"].lower()
    if not _HEX64.match(sha):
        raise UserError(f"--weights {spec!r}: sha256 must be 64 hex digits")
    return m["url"], sha


def download_url(
    spec: str, *, model: str, cache_dir: str | os.PathLike[str] | None = None
) -> tuple[Path, str]:
    """Download (or reuse) the file a `URL#sha256=HEX` spec names; returns (path, sha256)."""
    url, sha = _parse(spec)
    name = unquote(Path(urlsplit(url).path).name)
    if not name or name in (".", ".."):
        raise UserError(f"--weights {url!r}: the URL names no file; give the file's address")
    folder = Path(cache_dir) if cache_dir is not None else url_cache_dir()
    target = folder / name
    if target.is_file():
        actual = sha256_file(target)
        if actual != sha:
            raise UserError(
                f"{target}: cached file's sha256 is {actual}, not the pinned {sha}; "
                "delete it to download again, or check the pin"
            )
        return target, sha
    import torch.hub

    folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=sha, progress=True)
    except RuntimeError as exc:  # torch's "invalid hash value"; the .partial is removed
        raise UserError(
            f"{url}: sha256 mismatch ({exc}); nothing was kept; check the pin or the URL"
        ) from exc
    except urllib.error.HTTPError as exc:
        raise UserError(
            f"{url}: download failed (HTTP {exc.code}); check the URL, or download the file "
            f"and pass --weights PATH (docs/models.md lists the files for {model})"
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(
            f"{url}: cannot download ({reason}); offline? download the file on a connected "
            f"machine and pass --weights PATH (docs/models.md lists the files for {model})"
        ) from exc
    return target, sha

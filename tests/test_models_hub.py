"""Weights from the Hub: pinned and unpinned downloads (real huggingface_hub against a
loopback server speaking the Hub's resolve endpoint), sha256 checks, offline messages,
`require_pinned`, and the unverified known-weights table."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from reidbench.errors import UserError
from reidbench.models import load_embedder
from reidbench.models.hub import KNOWN_WEIGHTS, fetch_weights, pinning_required, resolve_weights
from reidbench.models.vit import ViTConfig
from tests.test_models_fixtures import finetuned_state_dict

REV = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves `/{repo}/resolve/{rev}/{file}` like the Hub's resolve endpoint (HEAD + GET);
    the branch `main` points at commit REV (X-Repo-Commit names it, as the Hub does)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                data = hub.files.get(self.path.replace("/resolve/main/", f"/resolve/{REV}/"))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", REV)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiny_ckpt_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # A real-size ViT-S checkpoint (~88 MB) with random values.
    path = tmp_path_factory.mktemp("hub") / "w.pth"
    cfg = ViTConfig(embed_dim=384, depth=12, num_heads=6)
    torch.save(finetuned_state_dict(cfg, num_ids=3, fc_classes=2, seed=2), path)
    return path.read_bytes()


SMALL = b"a small file standing in for a checkpoint" * 10


@pytest.fixture
def hub(tiny_ckpt_bytes: bytes) -> Iterator[FakeHub]:
    server = FakeHub(
        {
            f"/org/reid/resolve/{REV}/market.vits/transformer_120.pth": tiny_ckpt_bytes,
            f"/org/reid/resolve/{REV}/small.bin": SMALL,
        }
    )
    yield server
    server.close()


def _spec(sha: str, rev: str = REV, file: str = "market.vits/transformer_120.pth") -> str:
    return f"hf://org/reid/{file}@{rev}#sha256={sha}"


@pytest.mark.slow
def test_pinned_download_loads_and_caches(hub: FakeHub, tiny_ckpt_bytes: bytes, tmp_path: Path):
    sha = hashlib.sha256(tiny_ckpt_bytes).hexdigest()
    cache = tmp_path / "hf"
    emb = load_embedder(
        "personvit-s",
        weights=_spec(sha),
        precision="fp32",
        hub_cache_dir=cache,
        hub_endpoint=hub.endpoint,
    )
    assert emb.info["weights_sha256"] == sha
    assert Path(emb.info["weights"]).read_bytes() == tiny_ckpt_bytes
    assert any(r.startswith("GET ") for r in hub.requests)
    # Second resolve: served from the Hub cache (a HEAD to check the pin, no body).
    hub.requests.clear()
    path = resolve_weights("personvit-s", _spec(sha), cache_dir=cache, endpoint=hub.endpoint)
    assert path.read_bytes() == tiny_ckpt_bytes
    assert not any(r.startswith("GET ") for r in hub.requests)


@pytest.mark.slow
def test_sha256_mismatch_is_refused(hub: FakeHub, tmp_path: Path):
    with pytest.raises(UserError) as info:
        resolve_weights(
            "personvit-s",
            _spec("0" * 64, file="small.bin"),
            cache_dir=tmp_path / "hf",
            endpoint=hub.endpoint,
        )
    assert "sha256 mismatch" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_missing_remote_file_is_a_user_error(hub: FakeHub, tmp_path: Path):
    with pytest.raises(UserError, match="no such file at that revision"):
        resolve_weights(
            "personvit-s",
            _spec("0" * 64, file="nope.pth"),
            cache_dir=tmp_path / "hf",
            endpoint=hub.endpoint,
        )


def test_offline_gives_one_line_with_weights_path_hint(monkeypatch, tmp_path: Path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as info:
        resolve_weights("personvit-s", _spec("0" * 64), cache_dir=tmp_path / "hf")
    msg = str(info.value)
    assert "offline" in msg and "--weights PATH" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("hf://org/reid/file.pth", "expected hf://OWNER/REPO/FILE@COMMIT#sha256=HEX"),
        (f"hf://org/reid/file.pth@main#sha256={'0' * 64}", "full 40-hex commit"),
        (f"hf://org/reid/file.pth@{REV}#sha256=abc", "64 hex digits"),
        ("hub:nope", "no known Hub weights 'nope'"),
        ("/definitely/not/here.pth", "weights file not found"),
    ],
)
def test_bad_weight_specs(spec: str, fragment: str):
    with pytest.raises(UserError) as info:
        resolve_weights("personvit-s", spec)
    assert fragment in str(info.value)


def test_known_entries_are_unverified_and_refused_when_pinning_is_required():
    assert KNOWN_WEIGHTS, "the table lists the released files"
    for entry in KNOWN_WEIGHTS.values():
        # Nothing here was checked against the Hub: no entry may claim otherwise.
        assert not entry.verified and entry.sha256 is None and entry.ref == "main"
    with pinning_required(), pytest.raises(UserError) as info:
        resolve_weights("personvit-s", None)
    msg = str(info.value)
    assert "personvit-s needs weights" in msg and "--require-pinned" in msg
    assert "--weights PATH" in msg
    assert "hf://lakeAGI/PersonViTReID/market.vits.lup" in msg and "#sha256=<SHA256>" in msg
    with pytest.raises(UserError, match=r"checkpoint0260\.pth"):
        load_embedder("personvit-b", "hub:lup-ssl", require_pinned=True)


def _unverified(monkeypatch, filename: str = "small.bin") -> None:
    from reidbench.models import hub as hub_mod

    entry = hub_mod.HubWeights(
        "personvit-s", "market", "org/reid", filename, None, None, False, "test"
    )
    monkeypatch.setitem(hub_mod.KNOWN_WEIGHTS, ("personvit-s", "market"), entry)


@pytest.mark.slow
def test_unpinned_entry_downloads_prints_and_reuses_the_pin(
    monkeypatch, capsys, hub: FakeHub, tmp_path: Path
):
    import huggingface_hub.constants

    _unverified(monkeypatch)
    sha = hashlib.sha256(SMALL).hexdigest()
    pin = f"hf://org/reid/small.bin@{REV}#sha256={sha}"
    got = fetch_weights("personvit-s", None, cache_dir=tmp_path / "hf", endpoint=hub.endpoint)
    assert got.path.read_bytes() == SMALL and got.sha256 == sha and got.pin == pin
    assert got.source == "hub"
    assert pin in capsys.readouterr().err
    assert "HEAD /org/reid/resolve/main/small.bin" in hub.requests
    # The printed pin reproduces the file through the pinned path.
    assert resolve_weights("personvit-s", pin, cache_dir=tmp_path / "hf", endpoint=hub.endpoint)
    # Offline later: the same commit and file come from the local cache, no request made.
    hub.requests.clear()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    again = fetch_weights("personvit-s", None, cache_dir=tmp_path / "hf", endpoint=hub.endpoint)
    assert again == got and hub.requests == []


@pytest.mark.slow
def test_unpinned_entry_missing_on_the_hub_is_one_line(monkeypatch, hub: FakeHub, tmp_path):
    _unverified(monkeypatch, "gone.bin")
    with pytest.raises(UserError) as info:
        resolve_weights("personvit-s", None, cache_dir=tmp_path / "hf", endpoint=hub.endpoint)
    msg = str(info.value)
    assert "no such file at that revision" in msg and "--weights PATH" in msg


def test_unpinned_entry_offline_without_cache_says_how_to_pass_weights(monkeypatch, tmp_path):
    import huggingface_hub.constants

    _unverified(monkeypatch)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as info:
        resolve_weights("personvit-s", None, cache_dir=tmp_path / "hf")
    msg = str(info.value)
    assert "offline" in msg and "pass --weights PATH" in msg and "\n" not in msg


@pytest.mark.slow
def test_verified_entry_downloads(monkeypatch, hub: FakeHub, tmp_path: Path):
    from reidbench.models import hub as hub_mod

    sha = hashlib.sha256(SMALL).hexdigest()
    entry = hub_mod.HubWeights(
        "personvit-s", "market", "org/reid", "small.bin", REV, sha, True, "test"
    )
    monkeypatch.setitem(hub_mod.KNOWN_WEIGHTS, ("personvit-s", "market"), entry)
    path = resolve_weights("personvit-s", None, cache_dir=tmp_path / "hf", endpoint=hub.endpoint)
    assert path.read_bytes() == SMALL

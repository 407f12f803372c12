"""`https://...#sha256=HEX` weights against a loopback HTTP server: download into torch's
checkpoint cache, reuse, sha256 refusal, truncated bodies, and no partial files left."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reidbench.errors import UserError
from reidbench.models.hub import fetch_weights
from reidbench.models.weights_url import url_cache_dir

BODY = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BODY).hexdigest()


class FileServer:
    """Serves BODY at /releases/download/v1/model.pth; /short claims more than it sends."""

    def __init__(self) -> None:
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                if self.path.endswith("/model.pth"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    self.wfile.write(BODY)
                elif self.path.endswith("/short.pth"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(BODY)))
                    self.end_headers()
                    self.wfile.write(BODY[:1000])  # then the connection closes
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}/releases/download/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FileServer]:
    s = FileServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def torch_home(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "torch"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.slow
def test_url_downloads_into_torch_cache_and_is_reused(server: FileServer, torch_home: Path):
    spec = f"{server.base}/model.pth#sha256={SHA}"
    got = fetch_weights("fastreid-x", spec)
    assert got.path == torch_home / "hub" / "checkpoints" / "model.pth"
    assert got.path.read_bytes() == BODY
    assert (got.sha256, got.pin, got.source) == (SHA, spec, "url")
    assert url_cache_dir() == got.path.parent
    server.close()  # the cached file is used without the network
    again = fetch_weights("fastreid-x", spec)
    assert again == got and server.hits == 1


@pytest.mark.slow
def test_wrong_sha256_keeps_nothing(server: FileServer):
    with pytest.raises(UserError) as info:
        fetch_weights("m", f"{server.base}/model.pth#sha256={'0' * 64}")
    assert "sha256 mismatch" in str(info.value) and "\n" not in str(info.value)
    assert _leftovers(url_cache_dir()) == []


@pytest.mark.slow
def test_truncated_download_keeps_nothing(server: FileServer):
    with pytest.raises(UserError, match=r"cannot download|sha256 mismatch"):
        fetch_weights("m", f"{server.base}/short.pth#sha256={SHA}")
    assert _leftovers(url_cache_dir()) == []


@pytest.mark.slow
def test_cached_file_with_other_hash_is_an_error(server: FileServer):
    folder = url_cache_dir()
    folder.mkdir(parents=True)
    (folder / "model.pth").write_bytes(b"something else")
    with pytest.raises(UserError, match=r"cached file.s sha256 is .* not the pinned"):
        fetch_weights("m", f"{server.base}/model.pth#sha256={SHA}")


@pytest.mark.slow
def test_http_errors_and_offline_say_how_to_pass_a_path(server: FileServer):
    with pytest.raises(UserError, match=r"HTTP 404.*--weights PATH"):
        fetch_weights("m", f"{server.base}/nope.pth#sha256={SHA}")
    port = server.httpd.server_port
    server.close()
    with pytest.raises(UserError, match=r"cannot download .*offline\? .*--weights PATH"):
        fetch_weights("m", f"http://127.0.0.1:{port}/x/model2.pth#sha256={SHA}")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("https://drive.google.com/uc?id=1LaG1EJpHrxdAxKnSCJ_i0u-nbxSAeiFY", "Google Drive"),
        (f"https://drive.google.com/uc?id=1#sha256={SHA}", "Google Drive"),
        ("https://github.com/o/r/releases/download/v1/m.pth", "needs the file's sha256"),
        ("https://github.com/o/r/releases/download/v1/m.pth#sha256=abc", "64 hex digits"),
        (f"https://github.com/#sha256={SHA}", "names no file"),
        ("ftp://host/m.pth", "unsupported address"),
    ],
)
def test_bad_url_specs(spec: str, fragment: str):
    with pytest.raises(UserError) as info:
        fetch_weights("m", spec)
    assert fragment in str(info.value)

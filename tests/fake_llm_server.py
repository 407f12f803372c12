"""A loopback HTTP server speaking the OpenAI, Anthropic and Gemini wire formats. TEST FIXTURE ONLY.

The real SDK clients (openai, anthropic, google-genai) talk to it over
127.0.0.1, so the whole client path (request building, auth headers, error
classes, response parsing) runs for real. Answers are scripted; faults are
injected per request: 429 with Retry-After, 500, 400, a timeout, a truncated
JSON body, an HTML body, refusals, safety blocks and HTML in model text.

Never imported by `src/`: it imitates providers only for tests and benchmarks.
Run `python tests/fake_llm_server.py --latency 0.2 --rate-limit 160` to start
one in its own process (it prints its port, then serves until stdin closes).
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REFUSAL_TEXT = "I'm sorry, but I can't help with identifying people in images."
HTML_TEXT = (
    '<script>alert("pwned")</script><b>Score</b>: '
    '{{"reasons": "<img src=x onerror=alert(1)> same jacket", "score": {score}}}'
)
FAULTS = (
    "ok",
    "429",
    "500",
    "400",
    "401-echo",
    "timeout",
    "truncated",
    "html-body",
    "refusal",
    "refusal-text",
    "safety",
    "safety-finish",
    "html-text",
    "prose",
    "garbage",
    "404-model",
    "no-yes-no",  # logprobs requested: none of the first token's alternatives is yes/no
)  # plus "text:<literal model text>"


@dataclass
class Record:
    api: str
    model: str
    images: tuple[str, ...]  # sha256 of each image's bytes, as received
    fault: str
    status: int  # 0 while the answer is still being prepared
    score: int | None
    structured: bool
    body: dict[str, Any] = field(repr=False, default_factory=dict)


# The `attributes` prompt's vocabulary (reidbench/datasets/attributes.py), kept here so
# this fixture imports nothing from reidbench.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "upper_colour": ("black", "white", "red", "purple", "yellow", "gray", "blue", "green"),
    "lower_colour": ("black", "white", "pink", "purple", "yellow", "gray", "blue", "brown"),
    "sleeve_length": ("long", "short"),
    "lower_length": ("long", "short"),
    "lower_type": ("dress", "pants"),
    "hair_length": ("short", "long"),
    "hat": ("yes", "no"),
    "backpack": ("yes", "no"),
    "bag": ("yes", "no"),
    "handbag": ("yes", "no"),
    "gender": ("male", "female"),
}


def default_attributes(image: bytes) -> dict[str, str]:
    """Deterministic attribute values from an image's bytes; some "unclear", one in a few
    spelled loosely ("Grey", "TRUE"), so the reader's normalisation is exercised."""
    h = hashlib.sha256(image).digest()
    out = {}
    for i, (name, values) in enumerate(ATTRIBUTE_VALUES.items()):
        byte = h[i]
        out[name] = "unclear" if byte % 13 == 0 else values[byte % len(values)]
    if out["upper_colour"] == "gray":
        out["upper_colour"] = "Grey"
    return out


def default_score(images: list[bytes]) -> int:
    """A deterministic 'answer' from the image bytes, so tests can predict it."""
    h = hashlib.sha256(b"".join(images)).hexdigest()
    return int(h[:8], 16) % 101


def default_yes_probability(images: list[bytes]) -> float:
    """P(yes) / (P(yes) + P(no)) the fake's log-probabilities encode: near score/100, continuous."""
    h = hashlib.sha256(b"".join(images)).hexdigest()
    frac = (int(h[8:16], 16) % 1_000_000 + 0.5) / 1_000_000
    return (default_score(images) + frac) / 102.0


# How the fake spreads P(yes) and P(no) over spellings, and the mass left to other tokens:
# the scorer must sum spellings and renormalise over yes + no (judges/logprobs.py).
YES_SPELLINGS = (("Yes", 0.6), (" yes", 0.25), ("YES", 0.15))
NO_SPELLINGS = (("No", 0.7), (" no", 0.2), ("no.", 0.1))
OTHER_TOKENS = (("The", 0.04), ("I", 0.03), ("Based", 0.02), ("Maybe", 0.01))


def first_token_alternatives(p_yes: float, fault: str, n: int) -> list[tuple[str, float]]:
    """The first token's top-n (token, probability), most likely first."""
    if fault == "no-yes-no":
        alts = [(t, 0.25) for t, _ in OTHER_TOKENS]
    else:
        mass = 1.0 - sum(p for _, p in OTHER_TOKENS)
        alts = [(t, mass * p_yes * w) for t, w in YES_SPELLINGS]
        alts += [(t, mass * (1.0 - p_yes) * w) for t, w in NO_SPELLINGS]
        alts += list(OTHER_TOKENS)
    alts.sort(key=lambda tp: -tp[1])
    return alts[: max(1, n)]


class FakeLLMServer:
    """Start with `with FakeLLMServer() as srv:`; point SDKs at `srv.openai_base` etc."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        rate_limit_per_s: float | None = None,
        require_key: str | None = None,
        tokens_in: int = 1000,
        tokens_out: int = 20,
        retry_after: str = "0.05",
        timeout_sleep_s: float = 1.5,
    ) -> None:
        self.latency_s = latency_s
        self.rate_limit_per_s = rate_limit_per_s
        self.require_key = require_key
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out
        self.retry_after = retry_after
        self.timeout_sleep_s = timeout_sleep_s
        self.faults: collections.deque[str] = collections.deque()  # next requests, in order
        self.faults_by_image: dict[str, collections.deque[str]] = {}  # first image's sha -> faults
        self.score_fn = default_score
        # Multiple choice (requests whose text names "the N candidates (A, B, ...)"): the
        # true slot per first sent image's sha (the query, or the composite); answered right
        # at `choice_accuracy` (deterministic per request), else a wrong slot. Unscripted
        # items get a slot from the image hash. `choice_bias = (slot, rate)`: position-biased
        # mode, that slot at `rate` whatever the truth.
        self.choice_truth: dict[str, int] = {}
        self.choice_accuracy = 1.0
        self.choice_bias: tuple[int, float] | None = None
        self.yes_fn = default_yes_probability  # P(yes) when a request asks for logprobs
        # Attribute values per image for prompts that ask for them (`image_a` in the request);
        # tests script perception (truth with errors) by replacing it.
        self.attributes_fn: Callable[[bytes], dict[str, Any]] = default_attributes
        # The model version each answer reports (the response's model / modelVersion), in
        # order; when empty, the requested model name. Aliases move between snapshots.
        self.served_as: collections.deque[str] = collections.deque()
        self.system_fingerprint: str | None = None  # OpenAI answers carry it when set
        self.records: list[Record] = []
        # Models the server serves; None: any name. Others get the provider's 404.
        self.models: set[str] | None = None
        self.probes: list[str] = []  # GET paths (model listings / lookups), in order
        self.rate_limited = 0
        self._lock = threading.Lock()
        self._window: collections.deque[float] = collections.deque()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    # Anthropic and Gemini SDKs add their own path prefixes (/v1/messages, /v1beta/models/...).
    anthropic_base = url
    gemini_base = url

    # -- scripting ---------------------------------------------------------------------

    def next_fault(self, images: tuple[str, ...]) -> str:
        with self._lock:
            queue = self.faults_by_image.get(images[0]) if images else None
            if queue:
                return queue.popleft()
            if self.faults:
                return self.faults.popleft()
        return "ok"

    def over_rate(self) -> bool:
        if not self.rate_limit_per_s:
            return False
        now = time.monotonic()
        with self._lock:
            while self._window and now - self._window[0] > 1.0:
                self._window.popleft()
            if len(self._window) >= self.rate_limit_per_s:
                self.rate_limited += 1
                return True
            self._window.append(now)
        return False

    def record(self, rec: Record) -> None:
        with self._lock:
            self.records.append(rec)

    def choose(self, shas: tuple[str, ...], n: int) -> int:
        """The slot this fake model names for a multiple-choice request with `n` candidates."""
        u = int(hashlib.sha256("|".join(shas).encode()).hexdigest()[:8], 16) / 16**8
        if self.choice_bias is not None:
            slot, rate = self.choice_bias
            if u < rate:
                return slot
            u = (u - rate) / (1 - rate) if rate < 1 else 0.0
        truth = self.choice_truth.get(shas[0]) if shas else None
        if truth is None:
            return int(u * n) % n
        if u < self.choice_accuracy:
            return truth
        wrong = (u - self.choice_accuracy) / max(1e-12, 1 - self.choice_accuracy)
        return (truth + 1 + int(wrong * (n - 1)) % (n - 1)) % n

    def calls_by_images(self) -> collections.Counter[tuple[str, ...]]:
        with self._lock:
            return collections.Counter(r.images for r in self.records)


_CHOICE_RE = re.compile(r"the \d+ candidates \(([A-Z](?:, [A-Z])*)\)")


def _answer(score: int, attributes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A superset answer: every bundled prompt finds its keys in it (the per-image
    attributes only when the request asked for them)."""
    same = score >= 50
    sides = {"image_a": attributes[0], "image_b": attributes[-1]} if attributes else {}
    return {
        **sides,
        "attributes": {
            k: "match" if same else "mismatch"
            for k in ("upper_clothing", "lower_clothing", "shoes", "bag", "hair", "build")
        },
        "reasons": "similar clothing colours" if same else "different clothing",
        "score": score,
        "decision": "same" if same else "different",
        "confidence": max(score, 100 - score),
    }


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # the default (5) refuses connections from a 32-way client
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    fake: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ----------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def do_POST(self) -> None:
        try:
            self._post()
        except Exception as exc:  # a fixture bug must show up as a clear 500, not a hang
            self._json(500, {"error": {"message": f"fake server bug: {exc!r}"}})

    def do_GET(self) -> None:
        """Model listing (OpenAI `GET /v1/models`) and lookups (Anthropic `GET /v1/models/ID`,
        Gemini `GET /v1beta/models/ID`): what the pre-flight asks."""
        fake = self.fake
        path = self.path.split("?")[0]
        with fake._lock:
            fake.probes.append(path)
        key = (
            self.headers.get("x-api-key")
            or self.headers.get("x-goog-api-key")
            or self.headers.get("Authorization", "").removeprefix("Bearer ")
        )
        api = "gemini" if path.startswith("/v1beta/") else "anthropic"
        if fake.require_key is not None and key != fake.require_key:
            self._json(401, _error("openai" if path == "/v1/models" else api, 401, "bad key"))
            return
        if path == "/v1/models":
            names = sorted(fake.models) if fake.models is not None else ["fake-model"]
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in names]
            self._json(200, {"object": "list", "data": data})
            return
        model = path.rsplit("/", 1)[-1]
        if not path.startswith(("/v1/models/", "/v1beta/models/")):
            self._json(404, {"error": {"message": f"no route {path}"}})
        elif fake.models is not None and model not in fake.models:
            self._json(404, _error(api, 404, f"model {model} not found"))
        elif api == "gemini":
            self._json(200, {"name": f"models/{model}", "displayName": model})
        else:
            self._json(
                200,
                {
                    "type": "model",
                    "id": model,
                    "display_name": model,
                    "created_at": "2025-01-01T00:00:00Z",
                },
            )

    def _post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if len(data) < length or not data:  # the client died mid-request (e.g. SIGKILL)
            self.close_connection = True
            return
        body = json.loads(data)
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            api, key = "openai", self.headers.get("Authorization", "").removeprefix("Bearer ")
            images, model = _openai_images(body), body.get("model", "")
            structured = "response_format" in body
        elif path.endswith("/v1/messages"):
            # Anthropic SDKs send x-api-key (older) or an Authorization bearer (this one).
            key = self.headers.get("x-api-key") or self.headers.get("Authorization", "")
            api, key = "anthropic", key.removeprefix("Bearer ")
            images, model = _anthropic_images(body), body.get("model", "")
            structured = "tools" in body or "output_config" in body
        elif ":generateContent" in path:
            api, key = "gemini", self.headers.get("x-goog-api-key", "")
            images = _gemini_images(body)
            model = path.split("/models/")[-1].split(":")[0]
            structured = "responseSchema" in body.get("generationConfig", {}) or (
                "responseJsonSchema" in body.get("generationConfig", {})
            )
        else:
            self._json(404, {"error": {"message": f"no route {path}"}})
            return
        fake = self.fake
        shas = tuple(hashlib.sha256(b).hexdigest() for b in images)
        if fake.require_key is not None and key != fake.require_key:
            fake.record(Record(api, model, shas, "bad-key", 401, None, structured, body))
            self._json(401, {"error": {"message": "invalid api key", "type": "auth"}})
            return
        if fake.over_rate():
            fake.record(Record(api, model, shas, "rate", 429, None, structured, body))
            self._json(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                {"Retry-After": "1"},
            )
            return
        if fake.models is not None and model not in fake.models:
            fake.record(Record(api, model, shas, "no-model", 404, None, structured, body))
            self._json(404, _error(api, 404, f"The model `{model}` does not exist."))
            return
        fault = fake.next_fault(shas)
        score = fake.score_fn(images)
        attributes = None
        if images and "image_a" in json.dumps(body):  # the `attributes` prompt
            attributes = [fake.attributes_fn(b) for b in images]
        if fake.latency_s:
            time.sleep(fake.latency_s)
        rec = Record(api, model, shas, fault, 0, score, structured, body)
        self._images = images
        fake.record(rec)  # on arrival: a request the client gave up on still counts
        rec.status = self._respond(api, model, fault, score, key, structured, body, attributes)

    # -- responses ---------------------------------------------------------------------

    def _respond(
        self,
        api: str,
        model: str,
        fault: str,
        score: int,
        key: str,
        structured: bool,
        body: dict[str, Any],
        attributes: list[dict[str, Any]] | None = None,
    ) -> int:
        fake = self.fake
        if fault == "429":
            self._json(
                429, _error(api, 429, "rate limit reached"), {"Retry-After": fake.retry_after}
            )
            return 429
        if fault == "500":
            self._json(500, _error(api, 500, "internal error"))
            return 500
        if fault == "400":
            self._json(400, _error(api, 400, "invalid request: unsupported parameter"))
            return 400
        if fault == "401-echo":
            self._json(401, _error(api, 401, f"Incorrect API key provided: {key}"))
            return 401
        if fault == "404-model":  # a retired or unknown model, as each provider answers it
            self._json(404, _not_found(api, model))
            return 404
        if fault == "timeout":
            time.sleep(fake.timeout_sleep_s)
            fault = "ok"
        if fault == "html-body":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            return 200
        if fault == "safety" and api == "openai":
            # DashScope's content inspection rejection, as its OpenAI-compatible mode sends it.
            self._json(
                400,
                {
                    "error": {
                        "code": "data_inspection_failed",
                        "type": "data_inspection_failed",
                        "message": "Input data may contain inappropriate content.",
                    }
                },
            )
            return 400
        answer = _answer(score, attributes)
        labels = _CHOICE_RE.search(json.dumps(body))
        if labels:  # a multiple-choice request
            options = labels.group(1).split(", ")
            shas = tuple(hashlib.sha256(b).hexdigest() for b in _images(api, body))
            answer["answer"] = options[fake.choose(shas, len(options))]
        text = json.dumps(answer)
        alternatives = _requested_logprobs(api, body, fault, fake, self._images)
        if alternatives is not None and fault in ("ok", "no-yes-no"):
            text = alternatives[0][0]  # the one-word answer is the most likely first token
        if fault == "refusal-text":
            text = REFUSAL_TEXT
        elif fault == "html-text":
            text = HTML_TEXT.format(score=score)
        elif fault == "prose":
            text = f"Both wear similar clothes. My similarity score is {score}/100."
        elif fault == "garbage":
            text = "banana banana banana"
        elif fault.startswith("text:"):
            text = fault[len("text:") :]
        builder = {"openai": _openai_body, "anthropic": _anthropic_body, "gemini": _gemini_body}[
            api
        ]
        with fake._lock:
            served = fake.served_as.popleft() if fake.served_as else model
        payload = builder(served, text, fault, score, structured, body, fake)
        if alternatives is not None and fault not in ("refusal", "safety", "safety-finish"):
            _add_logprobs(api, payload, alternatives)
        if api == "openai" and fake.system_fingerprint:
            payload["system_fingerprint"] = fake.system_fingerprint
        raw = json.dumps(payload).encode()
        if fault == "truncated":
            raw = raw[: len(raw) // 2]
        self._send(200, raw)
        return 200


def _requested_logprobs(
    api: str, body: dict[str, Any], fault: str, fake: FakeLLMServer, images: list[bytes]
) -> list[tuple[str, float]] | None:
    """The first token's alternatives when the request asked for logprobs, else None."""
    if api == "openai" and body.get("logprobs"):
        n = int(body.get("top_logprobs") or 0)
    elif api == "gemini" and body.get("generationConfig", {}).get("responseLogprobs"):
        n = int(body["generationConfig"].get("logprobs") or 0)
    else:
        return None
    return first_token_alternatives(fake.yes_fn(images), fault, n)


def _add_logprobs(api: str, payload: dict[str, Any], alts: list[tuple[str, float]]) -> None:
    """The real wire shapes: OpenAI `choices[].logprobs.content[]`, Gemini `logprobsResult`."""
    chosen, p_chosen = alts[0]
    if api == "openai":
        entry = {
            "token": chosen,
            "logprob": math.log(p_chosen),
            "bytes": list(chosen.encode()),
            "top_logprobs": [
                {"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in alts
            ],
        }
        payload["choices"][0]["logprobs"] = {"content": [entry], "refusal": None}
    elif api == "gemini":
        cand = payload["candidates"][0]
        cand["avgLogprobs"] = math.log(p_chosen)
        cand["logprobsResult"] = {
            "topCandidates": [
                {
                    "candidates": [
                        {"token": t, "tokenId": i, "logProbability": math.log(p)}
                        for i, (t, p) in enumerate(alts)
                    ]
                }
            ],
            "chosenCandidates": [
                {"token": chosen, "tokenId": 0, "logProbability": math.log(p_chosen)}
            ],
            "logProbabilitySum": math.log(p_chosen),
        }


def _error(api: str, status: int, message: str) -> dict[str, Any]:
    if api == "anthropic":
        kind = {
            429: "rate_limit_error",
            500: "api_error",
            401: "authentication_error",
            404: "not_found_error",
        }
        return {
            "type": "error",
            "error": {"type": kind.get(status, "invalid_request_error"), "message": message},
        }
    if api == "gemini":
        names = {
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            401: "UNAUTHENTICATED",
            404: "NOT_FOUND",
        }
        return {
            "error": {
                "code": status,
                "message": message,
                "status": names.get(status, "INVALID_ARGUMENT"),
            }
        }
    return {"error": {"message": message, "type": "error", "code": str(status)}}


def _not_found(api: str, model: str) -> dict[str, Any]:
    if api == "anthropic":
        return {"type": "error", "error": {"type": "not_found_error", "message": f"model: {model}"}}
    if api == "gemini":
        return {
            "error": {
                "code": 404,
                "message": f"models/{model} is not found for API version v1beta",
                "status": "NOT_FOUND",
            }
        }
    return {
        "error": {
            "message": f"The model `{model}` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
    }


def _images(api: str, body: dict[str, Any]) -> list[bytes]:
    return {"openai": _openai_images, "anthropic": _anthropic_images, "gemini": _gemini_images}[
        api
    ](body)


def _b64(data: str) -> bytes:
    # google-genai sends URL-safe base64; the others the standard alphabet.
    data = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _openai_images(body: dict[str, Any]) -> list[bytes]:
    out = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    out.append(_b64(part["image_url"]["url"].split(",", 1)[1]))
    return out


def _anthropic_images(body: dict[str, Any]) -> list[bytes]:
    out = []
    for msg in body.get("messages", []):
        for part in msg.get("content", []):
            if isinstance(part, dict) and part.get("type") == "image":
                out.append(_b64(part["source"]["data"]))
    return out


def _gemini_images(body: dict[str, Any]) -> list[bytes]:
    out = []
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                out.append(_b64(inline["data"]))
    return out


def _openai_body(
    model: str,
    text: str,
    fault: str,
    score: int,
    structured: bool,
    body: dict[str, Any],
    fake: FakeLLMServer,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    finish = "stop"
    if fault == "refusal":
        message = {"role": "assistant", "content": None, "refusal": REFUSAL_TEXT}
    elif fault == "safety-finish":
        message = {"role": "assistant", "content": ""}
        finish = "content_filter"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": fake.tokens_in,
            "completion_tokens": fake.tokens_out,
            "total_tokens": fake.tokens_in + fake.tokens_out,
        },
    }


def _anthropic_body(
    model: str,
    text: str,
    fault: str,
    score: int,
    structured: bool,
    body: dict[str, Any],
    fake: FakeLLMServer,
) -> dict[str, Any]:
    stop = "end_turn"
    tools = body.get("tools") or []
    if fault in ("refusal", "safety", "safety-finish"):
        content: list[dict[str, Any]] = [{"type": "text", "text": REFUSAL_TEXT}]
        stop = "refusal"
    elif tools and fault == "ok":
        content = [
            {
                "type": "tool_use",
                "id": "toolu_fake",
                "name": tools[0]["name"],
                "input": json.loads(text),
            }
        ]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": text}]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": fake.tokens_in, "output_tokens": fake.tokens_out},
    }


def _gemini_body(
    model: str,
    text: str,
    fault: str,
    score: int,
    structured: bool,
    body: dict[str, Any],
    fake: FakeLLMServer,
) -> dict[str, Any]:
    usage = {
        "promptTokenCount": fake.tokens_in,
        "candidatesTokenCount": fake.tokens_out,
        "totalTokenCount": fake.tokens_in + fake.tokens_out,
    }
    if fault == "safety":
        return {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {
                "promptTokenCount": fake.tokens_in,
                "totalTokenCount": fake.tokens_in,
            },
        }
    if fault == "refusal":
        text = REFUSAL_TEXT
    finish = "SAFETY" if fault == "safety-finish" else "STOP"
    parts = [] if fault == "safety-finish" else [{"text": text}]
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": usage,
        "modelVersion": model,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--rate-limit", type=float, default=None)
    args = ap.parse_args(argv)
    srv = FakeLLMServer(latency_s=args.latency, rate_limit_per_s=args.rate_limit).start()
    print(srv.port, flush=True)
    try:
        for line in sys.stdin:  # serve until the parent closes stdin; "stats" prints counters
            if line.strip() == "stats":
                print(
                    json.dumps({"requests": len(srv.records), "rate_limited": srv.rate_limited}),
                    flush=True,
                )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

"""Circuit breaker: stop one LVLM system when its endpoint cannot answer, instead of paying
(in time and money) for thousands of doomed calls.

The runner reports every attempt here. The breaker trips, for the system it watches only, on
- any HTTP 401 or 403 (a rejected key will not start working on a retry),
- a model-not-found answer (HTTP 404, or a 400 whose message says the model does not exist),
- `connection_errors` consecutive attempts without an answer (connection refused or reset,
  or timed out), which is a dead or unreachable server,
- a timeout rate above `timeout_rate` once `min_calls` attempts were made.
Transient 429 and 5xx answers do not trip it: they keep the runner's retries and backoff.
Once tripped, the runner sends no further request for that system; answers already
received stay in the response cache, so the next run reuses them. Exit code 3 and the
thresholds are documented in docs/errors.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from reidbench.judges.providers.base import ProviderError

# Provider wordings of "no such model" on a 400 (vLLM before 0.6 and some gateways use 400).
_MODEL_MISSING = re.compile(
    r"model[^.]*?(not found|does not exist|not exist|unknown|is not served|no such)"
    r"|(unknown|invalid) model|model_not_found",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class BreakerRules:
    """Thresholds (LVLM system fields `stop_after_connection_errors`, `stop_timeout_rate`,
    `stop_min_calls`)."""

    connection_errors: int = 5
    timeout_rate: float = 0.5
    min_calls: int = 10


def safe_url(url: str | Sequence[str] | None) -> str:
    """The endpoint URL to show a user: scheme, host, port and path, never user:password or a
    query string (either could hold a secret). A sequence: a pool (a `base_url` list)."""
    if not url:
        return "(local model, no endpoint)"
    if not isinstance(url, str):
        return "pool " + ", ".join(safe_url(u) for u in url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def stop_cause(error: ProviderError) -> str | None:
    """Why `error` alone stops a system (auth or unknown model), or None."""
    if error.status in (401, 403):
        return "the endpoint rejected the API key"
    if error.status == 404 or (error.status == 400 and _MODEL_MISSING.search(error.message)):
        return "the model or endpoint path was not found"
    return None


_ADVICE = {
    "auth": "check the key in the system's api_key_env variable",
    "model": "check the system's model (and base_url path); list the server's models",
    "down": "check that the server is running and base_url is right",
    "slow": "raise timeout_s, lower concurrency, or check the server's load",
}


class Breaker:
    """Counts one system's attempts and decides when to stop it (see module docstring)."""

    def __init__(
        self,
        rules: BreakerRules,
        system: str,
        url: str | Sequence[str] | None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.rules = rules
        self.redact = redact  # the reason is printed: an echoed key must not be
        self.system = system
        self.url = safe_url(url)
        self.reason: str | None = None  # set once, when the breaker trips
        self.attempts = 0
        self.timeouts = 0
        self._no_answer_streak = 0

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def answered(self) -> None:
        """An attempt came back with an HTTP answer (any status the breaker does not stop on)."""
        self.attempts += 1
        self._no_answer_streak = 0

    def failed(self, error: ProviderError) -> bool:
        """Record a failed attempt; True if the system must stop now."""
        if self.tripped:
            return True
        self.attempts += 1
        cause = stop_cause(error)
        if cause is not None:
            advice = _ADVICE["auth"] if error.status in (401, 403) else _ADVICE["model"]
            return self._trip(f"{cause} ({error.message})", advice)
        if error.kind not in ("connection", "timeout"):
            self._no_answer_streak = 0  # an HTTP answer (429, 5xx): the server is there
            return False
        self._no_answer_streak += 1
        if error.kind == "timeout":
            self.timeouts += 1
        r = self.rules
        if self._no_answer_streak >= r.connection_errors:
            return self._trip(
                f"{self._no_answer_streak} attempts in a row got no answer ({error.message})",
                _ADVICE["down"],
            )
        if self.attempts >= r.min_calls and self.timeouts / self.attempts > r.timeout_rate:
            return self._trip(
                f"{self.timeouts} of {self.attempts} attempts timed out "
                f"(more than {r.timeout_rate:.0%})",
                _ADVICE["slow"],
            )
        return False

    def _trip(self, why: str, advice: str) -> bool:
        why = self.redact(why)
        self.reason = f"system {self.system!r} stopped: {why} at {self.url}; {advice}"
        return True

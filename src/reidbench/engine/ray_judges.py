"""Local LVLMs across GPUs: a pool of Ray actors, each holding one model, as one Provider.

The asyncio runner (judges/runner.py) stays the one place with retries,
budgets, parsing and the response cache; this pool is only a `Provider` whose
`complete` sends the request to the least busy actor and awaits its reply. So
a Ray run and a local run of the same config share cache keys and produce the
same rows, and the driver writes every answer. An actor that dies is restarted
by Ray (the model loads again) and Ray sends the call in flight again (a local
model bills nothing, so a repeated call costs only time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reidbench.engine.ray_import import import_ray
from reidbench.errors import UserError
from reidbench.judges.providers.base import (
    PermanentError,
    Provider,
    ProviderReply,
    ProviderRequest,
    RetryableError,
)

# Ray restarts a dead actor (the model loads again) and resends its call this many times;
# a request that kills the actor every time is then a permanent error for that row.
_TASK_RETRIES = 3


class ProviderActor:
    """Holds one provider (one model); answers one request at a time."""

    def __init__(self, factory: Callable[[], Provider]) -> None:
        self.load_error: str | None = None
        try:
            self.provider: Provider | None = factory()
        except UserError as exc:  # a bad model name: reported by ready(), not as a crash
            self.provider, self.load_error = None, exc.message

    def ready(self) -> str | None:
        return self.load_error

    def complete(self, req: ProviderRequest) -> tuple[str, Any]:
        # Errors travel as values: Ray would wrap the exception and lose its fields.
        assert self.provider is not None
        try:
            return "ok", asyncio.run(self.provider.complete(req))
        except RetryableError as exc:
            return "retryable", (exc.message, exc.status, exc.retry_after)
        except PermanentError as exc:
            return "permanent", (exc.message, exc.status)


def pool_size(options_actors: int | None = None) -> tuple[int, float]:
    """(actors, GPUs per actor): one actor per GPU of the cluster, else one per node."""
    ray = import_ray()
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus:
        return options_actors or gpus, 1.0
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return options_actors or max(1, nodes), 0.0


class RayProviderPool:
    """`Provider` over `size` Ray actors, each built by `factory()` on its own node/GPU."""

    def __init__(
        self, factory: Callable[[], Provider], *, size: int | None = None, name: str = "model"
    ) -> None:
        ray = import_ray()
        self._ray = ray
        n, gpus = pool_size(size)
        actor_cls = ray.remote(
            num_cpus=1, num_gpus=gpus, max_restarts=-1, max_task_retries=_TASK_RETRIES
        )(ProviderActor)
        self.name = name
        self.actors = [actor_cls.remote(factory) for _ in range(n)]
        self.busy = [0] * n
        errors = [e for e in ray.get([a.ready.remote() for a in self.actors]) if e]
        if errors:
            self._kill()
            raise UserError(errors[0])

    async def complete(self, req: ProviderRequest) -> ProviderReply:
        i = min(range(len(self.actors)), key=self.busy.__getitem__)
        self.busy[i] += 1
        try:
            kind, value = await self.actors[i].complete.remote(req)
        except self._ray.exceptions.RayActorError as exc:  # died on every retry
            raise PermanentError(
                f"{self.name} actor {i} died {_TASK_RETRIES + 1} times on this request "
                f"({type(exc).__name__})"
            ) from None
        finally:
            self.busy[i] -= 1
        if kind == "retryable":
            message, status, retry_after = value
            raise RetryableError(message, status=status, retry_after=retry_after)
        if kind == "permanent":
            message, status = value
            raise PermanentError(message, status=status)
        return value

    def _kill(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)

    async def aclose(self) -> None:
        self._kill()

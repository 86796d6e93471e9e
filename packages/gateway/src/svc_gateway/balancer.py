"""Upstreams: weighted round-robin over healthy targets, with Kong's active health checks.

Kong (lua-resty-healthcheck, K:kong/runloop/balancer/healthcheckers.lua) probes healthy targets
every ``healthy.interval`` seconds and unhealthy ones every ``unhealthy.interval``; a target
turns unhealthy after ``http_failures`` failing statuses, ``tcp_failures`` connection errors or
``timeouts`` timeouts in a row, and healthy again after ``successes`` good answers. Targets start
healthy. State is per gateway process, as it is per Kong node.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

import aiohttp

from svc_gateway.config import ActiveCheck, Target, Upstream

log = logging.getLogger("svc_gateway.balancer")


@dataclasses.dataclass
class TargetState:
    target: Target
    healthy: bool = True
    successes: int = 0
    http_failures: int = 0
    tcp_failures: int = 0
    timeouts: int = 0
    current_weight: int = 0

    def reset(self) -> None:
        self.successes = self.http_failures = self.tcp_failures = self.timeouts = 0


class Balancer:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.states = [TargetState(t) for t in upstream.targets]
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def pick(self, exclude: frozenset[str] = frozenset()) -> Target | None:
        """Smooth weighted round-robin (nginx's) over healthy targets with weight > 0."""
        candidates = [
            s
            for s in self.states
            if s.healthy and s.target.weight > 0 and s.target.address not in exclude
        ]
        if not candidates:
            return None
        total = 0
        for state in candidates:
            state.current_weight += state.target.weight
            total += state.target.weight
        chosen = max(candidates, key=lambda s: s.current_weight)
        chosen.current_weight -= total
        return chosen.target

    def healthy_targets(self) -> list[str]:
        return [s.target.address for s in self.states if s.healthy]

    async def start(self) -> None:
        check = self.upstream.active
        if check is None or not self.states:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=check.timeout))
        for state in self.states:
            self._tasks.append(asyncio.create_task(self._watch(state, check)))

    async def stop(self) -> None:
        await self.stop_watching()
        if self._session is not None:
            await self._session.close()

    async def stop_watching(self) -> None:
        """Stop the periodic probes (tests drive ``probe`` by hand)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _watch(self, state: TargetState, check: ActiveCheck) -> None:
        while True:
            interval = check.healthy_interval if state.healthy else check.unhealthy_interval
            if interval <= 0:  # this side's checks are off: look again later
                interval = max(check.healthy_interval, check.unhealthy_interval)
            else:
                await self.probe(state, check)
            await asyncio.sleep(interval)

    async def probe(self, state: TargetState, check: ActiveCheck) -> None:
        assert self._session is not None
        url = f"http://{state.target.address}{check.http_path}"
        try:
            async with self._session.get(url) as response:
                status = response.status
        except TimeoutError:
            self._failure(state, "timeouts", check.timeouts)
            return
        except aiohttp.ClientError:
            self._failure(state, "tcp_failures", check.tcp_failures)
            return
        if status in check.healthy_statuses:
            self._success(state, check)
        elif status in check.unhealthy_statuses:
            self._failure(state, "http_failures", check.http_failures)

    def _success(self, state: TargetState, check: ActiveCheck) -> None:
        state.http_failures = state.tcp_failures = state.timeouts = 0
        if state.healthy or check.successes <= 0:
            return
        state.successes += 1
        if state.successes >= check.successes:
            state.healthy = True
            state.reset()
            log.info(
                "target healthy",
                extra={"upstream": self.upstream.name, "target": state.target.address},
            )

    def _failure(self, state: TargetState, counter: str, threshold: int) -> None:
        state.successes = 0
        if not state.healthy or threshold <= 0:
            return
        setattr(state, counter, getattr(state, counter) + 1)
        if getattr(state, counter) >= threshold:
            state.healthy = False
            state.reset()
            log.warning(
                "target unhealthy",
                extra={
                    "upstream": self.upstream.name,
                    "target": state.target.address,
                    "reason": counter,
                },
            )

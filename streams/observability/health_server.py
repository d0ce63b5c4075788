"""The worker's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

* ``/metrics``: the Prometheus text format of the worker's registry.
* ``/healthz``: 200 while the poll loop has run within ``stall_after_s``
  (the process and its loop are alive), else 503.
* ``/readyz``: 200 when the worker owns partitions (so the broker answered
  and the group admitted it) and the LLM circuit has not been open for longer
  than ``circuit_open_limit_s``; else 503 with the reason.

It runs on the worker's own event loop, bound to loopback unless configured
otherwise.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.llm.circuit_breaker import CircuitBreaker
from streams.worker import Worker

logger = logging.getLogger(__name__)


class HealthServer:
    """Serves the worker's metrics and probes.

    Args:
        worker: The worker to report on.
        breaker: The LLM endpoint's circuit breaker.
        stall_after_s: A poll loop silent this long is not healthy.
        circuit_open_limit_s: A circuit open this long makes the worker unready.
    """

    def __init__(
        self,
        worker: Worker,
        breaker: CircuitBreaker,
        *,
        stall_after_s: float = 30.0,
        circuit_open_limit_s: float = 300.0,
    ) -> None:
        self._worker = worker
        self._breaker = breaker
        self._stall_after_s = stall_after_s
        self._circuit_open_limit_s = circuit_open_limit_s
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        """Starts listening; ``port`` 0 picks a free port (see ``self.port``)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        # aiohttp exposes the bound port (for port 0) only on the server object.
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        logger.info("health_server.started host=%s port=%s", host, self.port)

    async def stop(self) -> None:
        """Stops listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._worker.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        silent_s = time.monotonic() - self._worker.last_poll
        if silent_s > self._stall_after_s:
            return web.json_response(
                {"status": "stalled", "poll_loop_silent_s": round(silent_s, 1)},
                status=503,
            )
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        problems = []
        if self._worker.assigned_partitions == 0:
            problems.append("no partitions assigned")
        if self._breaker.open_for_s > self._circuit_open_limit_s:
            problems.append(f"LLM circuit open for {self._breaker.open_for_s:.0f} s")
        if problems:
            return web.json_response(
                {"status": "not_ready", "problems": problems}, status=503
            )
        return web.json_response(
            {"status": "ready", "partitions": self._worker.assigned_partitions}
        )

"""The simulator's HTTP server: routes, start and stop.

``create_app`` builds the ``aiohttp`` application (chat completions are
handled in ``chat_handler``); ``serve`` starts it on a loopback port inside
a running event loop and returns a handle; ``run`` blocks, serving until
SIGINT or SIGTERM, for the command line.

Routes:
    POST /chat/completions, POST /v1/chat/completions: chat completions.
    GET /health: liveness.
    GET /stats, POST /stats/reset: counters (see ``stats``).
    GET /admin/faults, POST /admin/faults: read or replace fault settings
        (``?clock=first-request``: schedule windows start at the next request).
    POST /admin/prompt-cache/clear: forget every cached prompt prefix.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from types import TracebackType

import orjson
import pydantic
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from streams import event_loop
from streams.simulator.chat_handler import handle_chat_completions, json_response
from streams.simulator.config import FaultSettings, SimulatorConfig
from streams.simulator.fault_catalogue import ErrorSpec
from streams.simulator.metrics import render_metrics
from streams.simulator.state import STATE_KEY, SimulatorState

logger = logging.getLogger(__name__)

_BACKLOG = 4096
_SHUTDOWN_TIMEOUT_S = 1.0


def create_app(config: SimulatorConfig) -> web.Application:
    """Build the simulator application.

    Args:
        config: Latency, fault, seed and limit settings.

    Returns:
        An application whose state lives under ``STATE_KEY``.
    """
    app = web.Application(client_max_size=config.max_request_bytes)
    app[STATE_KEY] = SimulatorState(config)
    app.router.add_post("/chat/completions", handle_chat_completions)
    app.router.add_post("/v1/chat/completions", handle_chat_completions)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/stats/reset", _reset_stats)
    app.router.add_get("/admin/faults", _get_faults)
    app.router.add_post("/admin/faults", _replace_faults)
    app.router.add_post("/admin/prompt-cache/clear", _clear_prompt_cache)
    app.on_shutdown.append(_signal_closing)
    return app


async def _signal_closing(app: web.Application) -> None:
    app[STATE_KEY].closing.set()


async def _health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return json_response(
        {**state.stats.snapshot(), "prompt_cache_entries": len(state.prompt_cache)}
    )


async def _metrics(request: web.Request) -> web.Response:
    body = render_metrics(request.app[STATE_KEY].stats)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _reset_stats(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.stats.reset()
    return json_response(state.stats.snapshot())


async def _get_faults(request: web.Request) -> web.Response:
    return json_response(
        request.app[STATE_KEY].schedule.settings.model_dump(mode="json")
    )


async def _replace_faults(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        settings = FaultSettings.model_validate(orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, pydantic.ValidationError) as exc:
        spec = ErrorSpec(422, str(exc), "invalid_request_error", "invalid_parameter")
        return json_response(spec.body(), spec.status)
    state.schedule.replace(
        settings,
        time.monotonic(),
        from_first_request=request.query.get("clock") == "first-request",
    )
    return json_response(settings.model_dump(mode="json"))


async def _clear_prompt_cache(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.prompt_cache.clear()
    return json_response({"prompt_cache_entries": 0})


class SimulatorHandle:
    """A running simulator: where it listens and how to stop it.

    Use ``async with`` or call ``close``; both stop the server and end any
    request still held open by a fault.

    Attributes:
        app: The running application.
        host: The address the server listens on.
        port: The port the server listens on.
        admin_port: The process's own second port, when one was asked for.
    """

    def __init__(
        self,
        app: web.Application,
        runner: web.AppRunner,
        host: str,
        port: int,
        admin_port: int | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self._runner = runner

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:8000``; pass it as ``base_url``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def state(self) -> SimulatorState:
        """The live state: stats, prompt cache, fault schedule."""
        return self.app[STATE_KEY]

    async def close(self) -> None:
        """Stop the server; requests held open by faults end at once."""
        self.state.closing.set()
        await self._runner.cleanup()
        logger.info("simulator.stopped host=%s port=%s", self.host, self.port)

    async def __aenter__(self) -> SimulatorHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def serve(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    reuse_port: bool = False,
    admin_port: int | None = None,
) -> SimulatorHandle:
    """Start the simulator in the running event loop.

    Args:
        config: Simulator settings.
        host: Address to listen on; loopback by default.
        port: Port to listen on; 0 picks a free one.
        reuse_port: Bind with ``SO_REUSEPORT``, so several simulator
            processes can share one port and the kernel spreads connections
            over them (more answers per second on a machine with more cores).
        admin_port: Also listen on this port (0: a free one), which this
            process alone owns; with a shared port, it is where this
            process's ``/stats`` can be read.

    Returns:
        A handle with the bound port and URL.
    """
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=_BACKLOG, reuse_port=reuse_port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    bound_admin: int | None = None
    if admin_port is not None:
        await web.TCPSite(runner, host, admin_port).start()
        bound_admin = int(runner.addresses[-1][1])
    logger.info(
        "simulator.started host=%s port=%s latency_mean_ms=%s seed=%s",
        host,
        bound_port,
        config.latency_mean_ms,
        config.seed,
    )
    return SimulatorHandle(app, runner, host, bound_port, bound_admin)


def run(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    reuse_port: bool = False,
    admin_port: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; for the command line.

    Prints ``simulator listening on <url>`` to stdout, flushed, once the
    server accepts connections, so a parent process can wait for that line;
    with an admin port, ``simulator admin on <url>`` comes first.

    Args:
        config: Simulator settings.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (read it from the line).
        reuse_port: Share the port with other simulator processes.
        admin_port: A second port of this process's own (see ``serve``).
    """
    event_loop.run(
        _serve_until_signalled(
            config, host, port, reuse_port=reuse_port, admin_port=admin_port
        )
    )


async def _serve_until_signalled(
    config: SimulatorConfig,
    host: str,
    port: int,
    *,
    reuse_port: bool,
    admin_port: int | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    handle = await serve(
        config, host, port, reuse_port=reuse_port, admin_port=admin_port
    )
    if handle.admin_port is not None:
        print(f"simulator admin on http://{host}:{handle.admin_port}", flush=True)
    print(f"simulator listening on {handle.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await handle.close()

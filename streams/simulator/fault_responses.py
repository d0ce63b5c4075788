"""Connection-level faults: keep-alive blank lines, silence, and slow bodies.

Each function takes over the HTTP exchange for one request. They stop early
when the client disconnects or the simulator shuts down, so no handler
outlives its connection or its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

logger = logging.getLogger(__name__)

_DISCONNECT_POLL_S = 0.05


def client_gone(request: web.BaseRequest) -> bool:
    """Return whether the client has closed its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(closing: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless the server starts closing; True if it did."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing.wait(), timeout=seconds)
    return closing.is_set()


async def keepalive_then_close(
    request: web.BaseRequest,
    headers: dict[str, str],
    closing: asyncio.Event,
    interval_s: float,
    duration_s: float,
) -> web.StreamResponse:
    """Send HTTP 200, then a blank line per interval, then close the connection.

    This is what DeepSeek does while a request waits for capacity. The body
    ends after the blank lines with no JSON in it, and the connection is
    closed, so a client that reads it as a completion sees only whitespace.

    Args:
        request: The request being answered.
        headers: Headers to send, such as ``x-request-id``.
        closing: Set when the server shuts down.
        interval_s: Seconds between blank lines.
        duration_s: Seconds of blank lines before closing.
    """
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "application/json"
    response.force_close()
    await response.prepare(request)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    try:
        while loop.time() < deadline and not client_gone(request):
            await response.write(b"\n")
            wait_s = min(interval_s, max(0.0, deadline - loop.time()))
            if await pause(closing, wait_s):
                break
        await response.write_eof()
    except ConnectionError:
        logger.debug("simulator.client_disconnected fault=keepalive_then_close")
    return response


async def never_answer(request: web.BaseRequest, closing: asyncio.Event) -> None:
    """Wait without answering until the client disconnects or the server closes."""
    while not client_gone(request):
        if await pause(closing, _DISCONNECT_POLL_S):
            return
    logger.debug("simulator.client_disconnected fault=never_answers")


async def slow_drip(
    request: web.BaseRequest,
    headers: dict[str, str],
    body: bytes,
    closing: asyncio.Event,
    interval_s: float,
    chunk_bytes: int,
) -> web.StreamResponse:
    """Send a complete, valid JSON body a few bytes per interval.

    ``Content-Length`` is announced up front, so the response is well formed
    and only slow; a client whose read timeout exceeds the interval never
    times out, which is why it needs an absolute deadline.

    Args:
        request: The request being answered.
        headers: Headers to send, such as ``x-request-id``.
        body: The full response body.
        closing: Set when the server shuts down.
        interval_s: Seconds between chunks.
        chunk_bytes: Bytes per chunk.
    """
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "application/json"
    response.content_length = len(body)
    await response.prepare(request)

    try:
        for start in range(0, len(body), chunk_bytes):
            if client_gone(request):
                break
            await response.write(body[start : start + chunk_bytes])
            if start + chunk_bytes < len(body) and await pause(closing, interval_s):
                break
        else:
            await response.write_eof()
            return response
        # Cut short: close the connection so the client cannot mistake the
        # partial body for a complete one.
        response.force_close()
    except ConnectionError:
        logger.debug("simulator.client_disconnected fault=slow_drip")
    return response

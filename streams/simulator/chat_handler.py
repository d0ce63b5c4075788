"""Handling ``POST /chat/completions``: validation, faults, answer, usage.

A request is checked in the order DeepSeek checks it (API key, body,
parameters), then numbered; its number and the seed decide its fault and
latency. HTTP error faults answer at once; content faults and normal
answers wait the simulated latency; connection faults take over the
exchange (see ``fault_responses``). A packed request (several events, see
``packed``) gets one answer with an element per item, usage counted for the
whole request; item faults damage one element. Prompt cache accounting
happens when the request arrives, so it follows arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiohttp import web

from streams.simulator.answers import render_answer
from streams.simulator.chat_request import (
    ChatRequest,
    RequestRejected,
    parse_chat_request,
)
from streams.simulator.completion import completion_body, shape_completion
from streams.simulator.fault_catalogue import ERROR_FAULTS, ErrorSpec, FaultKind
from streams.simulator.fault_responses import (
    keepalive_then_close,
    never_answer,
    slow_drip,
)
from streams.simulator.packed import answer_request
from streams.simulator.state import STATE_KEY, RequestTicket, SimulatorState

logger = logging.getLogger(__name__)

_MISSING_KEY = ErrorSpec(
    401,
    "Authentication Fails: no API key in the Authorization header.",
    "authentication_error",
    "invalid_api_key",
)
_TOO_LARGE = ErrorSpec(
    413, "Request body too large.", "invalid_request_error", "request_too_large"
)
_BODY_READ_AT = web.RequestKey("streams_simulator_body_read_at", float)
"""Where a request keeps the loop time its body was read (service time)."""
_SHUTTING_DOWN = ErrorSpec(
    503, "Server Overloaded: shutting down.", "api_error", "server_overloaded"
)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Return ``payload`` serialised as an ``application/json`` response."""
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(spec: ErrorSpec, headers: dict[str, str]) -> web.Response:
    """Return the OpenAI-style error response described by ``spec``."""
    logger.debug("simulator.request_rejected status=%s code=%s", spec.status, spec.code)
    return json_response(spec.body(), spec.status, headers)


def _has_api_key(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


async def handle_chat_completions(request: web.Request) -> web.StreamResponse:
    """Answer one chat-completions request and count it in the stats."""
    state = request.app[STATE_KEY]
    loop = asyncio.get_running_loop()
    started = loop.time()
    state.stats.request_started()
    status: int | None = None
    try:
        response = await _answer(request, state)
        if response is None:
            # The client is gone; aiohttp has nobody to send this to.
            return web.Response(status=499)
        status = response.status
        return response
    finally:
        ended = loop.time()
        body_read = request.get(_BODY_READ_AT, started)
        state.stats.request_finished(status, ended - started, ended - body_read)


async def _answer(
    request: web.Request, state: SimulatorState
) -> web.StreamResponse | None:
    """Answer one chat request; ``None`` when the client left unanswered."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_response(_TOO_LARGE, {"x-request-id": state.arrival_id(b"")})
    request[_BODY_READ_AT] = asyncio.get_running_loop().time()
    request_id = state.arrival_id(raw)
    headers = {"x-request-id": request_id}

    if not _has_api_key(request):
        return error_response(_MISSING_KEY, headers)
    try:
        chat = parse_chat_request(raw)
    except RequestRejected as rejected:
        return error_response(rejected.spec, headers)

    ticket = state.accept(request_id)
    fault = state.schedule.choose(time.monotonic(), ticket.rng.random())
    latency_s = state.latency.draw_s(ticket.rng)
    if fault is not None:
        state.stats.fault_injected(fault)
        logger.debug(
            "simulator.fault_injected kind=%s sequence=%s", fault.value, ticket.sequence
        )
    return await _act_out(request, state, chat, ticket, fault, latency_s)


async def _act_out(
    request: web.Request,
    state: SimulatorState,
    chat: ChatRequest,
    ticket: RequestTicket,
    fault: FaultKind | None,
    latency_s: float,
) -> web.StreamResponse | None:
    """Produce the response for an accepted request under ``fault``."""
    headers = {"x-request-id": ticket.request_id}
    faults = state.schedule.settings
    if fault in ERROR_FAULTS:
        return error_response(ERROR_FAULTS[fault], headers)
    if fault is FaultKind.NEVER_ANSWERS:
        await never_answer(request, state.closing)
        return (
            error_response(_SHUTTING_DOWN, headers) if state.closing.is_set() else None
        )
    if fault is FaultKind.KEEPALIVE_THEN_CLOSE:
        return await keepalive_then_close(
            request,
            headers,
            state.closing,
            faults.keepalive_interval_s,
            faults.keepalive_duration_s,
        )

    cache = state.prompt_cache.account_messages(chat.messages)
    answer = render_answer(
        answer_request(chat.text_of("system"), chat.text_of("user"), fault, ticket.rng)
    )
    parts = shape_completion(answer, fault, chat.max_tokens, ticket.rng)
    state.stats.tokens_used(cache, parts.completion_tokens)
    payload = completion_body(
        completion_id=f"chatcmpl-{ticket.request_id}",
        model=chat.model,
        created=int(time.time()),
        parts=parts,
        cache=cache,
    )

    if latency_s > 0:
        await asyncio.sleep(latency_s)
    if fault is FaultKind.SLOW_DRIP:
        return await slow_drip(
            request,
            headers,
            orjson.dumps(payload),
            state.closing,
            faults.slow_drip_interval_s,
            faults.slow_drip_chunk_bytes,
        )
    return json_response(payload, headers=headers)

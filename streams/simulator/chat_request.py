"""Validating an incoming chat-completions request body.

Mirrors the checks DeepSeek applies before any inference: malformed bodies
and messages are 400, parameter values out of range are 422, a model name
that does not start with ``deepseek-`` is 400 "Model Not Exist", and JSON
output requires the word "json" somewhere in the messages. Streaming is not
simulated and is refused with 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from streams.simulator.fault_catalogue import ErrorSpec

DEFAULT_MAX_TOKENS = 4096
"""Completion budget assumed when a request gives no ``max_tokens``."""

MODEL_PREFIX = "deepseek-"


class RequestRejected(Exception):
    """The request is invalid; ``spec`` is the error to answer with."""

    def __init__(self, spec: ErrorSpec) -> None:
        super().__init__(spec.message)
        self.spec = spec


def _bad_request(message: str) -> RequestRejected:
    return RequestRejected(
        ErrorSpec(400, message, "invalid_request_error", "invalid_request_error")
    )


def _bad_parameter(message: str) -> RequestRejected:
    return RequestRejected(
        ErrorSpec(422, message, "invalid_request_error", "invalid_parameter")
    )


@dataclass(frozen=True)
class ChatRequest:
    """The parts of a chat-completions request the simulator uses.

    Attributes:
        model: Requested model name, echoed in the response.
        messages: ``(role, content)`` pairs in order; list contents are
            flattened to their text parts.
        max_tokens: Completion budget.
        json_output: Whether ``response_format`` asked for a JSON object.
    """

    model: str
    messages: tuple[tuple[str, str], ...]
    max_tokens: int
    json_output: bool

    def text_of(self, role: str) -> str:
        """Return the contents of all messages with ``role``, joined by newlines."""
        return "\n".join(content for name, content in self.messages if name == role)


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and validate a request body.

    Args:
        raw: The HTTP request body.

    Returns:
        The validated request.

    Raises:
        RequestRejected: The body or one of its parameters is invalid.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _bad_request("Invalid request body: not valid JSON.") from exc
    if not isinstance(body, dict):
        raise _bad_request("Invalid request body: expected a JSON object.")

    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("Invalid request body: 'model' is required.")
    if not model.startswith(MODEL_PREFIX):
        raise RequestRejected(
            ErrorSpec(
                400, "Model Not Exist", "invalid_request_error", "model_not_found"
            )
        )
    if body.get("stream") is True:
        raise _bad_request("Streaming is not supported by this simulator.")

    messages = _parse_messages(body.get("messages"))
    max_tokens = _parse_max_tokens(body.get("max_tokens"))
    _check_temperature(body.get("temperature"))
    json_output = _parse_response_format(body.get("response_format"))
    if json_output and not any("json" in text.lower() for _, text in messages):
        raise _bad_request(
            "Prompt must contain the word 'json' to use response_format json_object."
        )
    return ChatRequest(model, messages, max_tokens, json_output)


def _parse_messages(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise _bad_request("Invalid request body: 'messages' must be a non-empty list.")
    messages: list[tuple[str, str]] = []
    for index, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad_request(f"Invalid request body: messages[{index}] has no role.")
        messages.append((message["role"], _content_text(message.get("content"), index)))
    return tuple(messages)


def _content_text(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = [
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text", ""), str)
        ]
        return "".join(parts)
    raise _bad_request(f"Invalid request body: messages[{index}].content is invalid.")


def _parse_max_tokens(value: Any) -> int:
    if value is None:
        return DEFAULT_MAX_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad_parameter("Invalid max_tokens: expected a positive integer.")
    return value


def _check_temperature(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad_parameter("Invalid temperature: expected a number.")
    if not 0.0 <= value <= 2.0:
        raise _bad_parameter("Invalid temperature: expected a value within [0, 2].")


def _parse_response_format(value: Any) -> bool:
    if value is None:
        return False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("json_object", "text"):
        raise _bad_parameter(
            "Invalid response_format: type must be json_object or text."
        )
    return bool(kind == "json_object")

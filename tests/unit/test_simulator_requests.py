"""Validation of chat-completions request bodies, as DeepSeek validates them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.simulator.chat_request import (
    DEFAULT_MAX_TOKENS,
    RequestRejected,
    parse_chat_request,
)


def _body(**overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "model": "deepseek-flash",
        "messages": [
            {"role": "system", "content": "Reply with a json object."},
            {"role": "user", "content": "text: hello"},
        ],
        "response_format": {"type": "json_object"},
        "max_tokens": 300,
        "temperature": 0.0,
        "stream": False,
        "thinking": {"type": "disabled"},
    }
    body.update(overrides)
    return orjson.dumps({key: value for key, value in body.items() if value != "-"})


def test_a_pipeline_request_is_accepted() -> None:
    request = parse_chat_request(_body())

    assert request.model == "deepseek-flash"
    assert request.max_tokens == 300
    assert request.json_output
    assert request.text_of("user") == "text: hello"


def test_any_deepseek_model_name_is_accepted_and_max_tokens_defaults() -> None:
    request = parse_chat_request(_body(model="deepseek-v4-pro", max_tokens="-"))

    assert request.model == "deepseek-v4-pro"
    assert request.max_tokens == DEFAULT_MAX_TOKENS


def test_list_contents_are_flattened_to_text() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "json a"}]}]

    assert parse_chat_request(_body(messages=messages)).text_of("user") == "json a"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (_body(model="gpt-4o"), 400, "Model Not Exist"),
        (_body(model="-"), 400, "'model' is required"),
        (_body(stream=True), 400, "Streaming"),
        (_body(messages=[]), 400, "'messages'"),
        (_body(messages=[{"content": "json"}]), 400, "no role"),
        (_body(messages=[{"role": "user", "content": 5}]), 400, "content"),
        (_body(max_tokens=0), 422, "max_tokens"),
        (_body(max_tokens=-5), 422, "max_tokens"),
        (_body(max_tokens=1.5), 422, "max_tokens"),
        (_body(max_tokens=True), 422, "max_tokens"),
        (_body(temperature=2.5), 422, "temperature"),
        (_body(temperature="hot"), 422, "temperature"),
        (_body(response_format={"type": "yaml"}), 422, "response_format"),
        (
            _body(messages=[{"role": "user", "content": "no keyword here"}]),
            400,
            "json",
        ),
    ],
)
def test_invalid_requests_are_rejected_with_the_api_status(
    body: bytes, status: int, message: str
) -> None:
    with pytest.raises(RequestRejected) as rejected:
        parse_chat_request(body)

    assert rejected.value.spec.status == status
    assert message in rejected.value.spec.message
    assert set(rejected.value.spec.body()["error"]) >= {"message", "type", "code"}

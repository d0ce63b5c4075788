"""``streams dlq``: arguments become a selection, errors become exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import streams.dead_letters as dead_letters
from streams.cli import build_parser, main
from streams.dead_letters import MissingTopicError, Selection


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Replaces both commands with recorders; no cluster is involved."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def recorder(name: str) -> Any:
        def record(settings: Any, **options: Any) -> None:
            seen.append((name, options))

        return record

    monkeypatch.setattr(dead_letters, "inspect_dead_letters", recorder("inspect"))
    monkeypatch.setattr(dead_letters, "replay_dead_letters", recorder("replay"))
    return seen


def test_inspect_options_become_the_selection_and_output_flags(
    calls: list[tuple[str, dict[str, Any]]],
) -> None:
    before = datetime.now(UTC)

    code = main(
        [
            "dlq",
            "inspect",
            "--last",
            "2h",
            "--reason",
            "timeout",
            "rate_limited",
            "--reason",
            "server_error",
            "--pipeline",
            "crm",
            "--sample",
            "3",
            "--show-payloads",
            "--json",
        ]
    )

    assert code == 0
    ((name, options),) = calls
    assert name == "inspect"
    selection: Selection = options["selection"]
    assert selection.reasons == {"timeout", "rate_limited", "server_error"}
    assert selection.pipelines == {"crm"}
    assert selection.since is not None
    assert before - timedelta(hours=2, seconds=5) < selection.since
    assert selection.since <= datetime.now(UTC) - timedelta(hours=2)
    assert options["sample_size"] == 3
    assert options["show_payloads"] is True and options["as_json"] is True


def test_replay_is_a_dry_run_unless_execute_is_given(
    calls: list[tuple[str, dict[str, Any]]],
) -> None:
    assert main(["dlq", "replay", "--event-id", "a", "b", "--until", "2026-11-02"]) == 0
    assert main(["dlq", "replay", "--since", "2026-11-01T00:00Z", "--execute"]) == 0

    (_, dry), (_, executed) = calls
    assert dry["execute"] is False and executed["execute"] is True
    assert dry["selection"] == Selection.of(
        event_ids=["a", "b"], until=datetime(2026, 11, 2, tzinfo=UTC)
    )
    assert executed["selection"].since == datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "argv",
    [
        ["dlq"],
        ["dlq", "inspect", "--since", "2026-11-02", "--last", "2h"],
        ["dlq", "inspect", "--last", "soon"],
        ["dlq", "inspect", "--execute"],
        ["dlq", "replay", "--last", "2h"],
        ["dlq", "replay", "--since", "yesterday"],
    ],
)
def test_wrong_arguments_are_refused_by_the_parser(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_a_missing_topic_ends_the_command_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(settings: Any, **options: Any) -> None:
        raise MissingTopicError("events.dead-letter", "127.0.0.1:19092")

    monkeypatch.setattr(dead_letters, "inspect_dead_letters", missing)

    assert main(["dlq", "inspect"]) == 1
    assert (
        "streams dlq: topic events.dead-letter does not exist on 127.0.0.1:19092"
        in capsys.readouterr().err
    )

"""Trimming event text to a pipeline's input token limit, on real and built e-mails."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import paths
from streams.data.sample import load_pipeline_events
from streams.llm import token_count
from streams.llm.circuit_breaker import CircuitBreaker
from streams.llm.client import ChatRequest, ChatResponse
from streams.llm.pricing import PriceList
from streams.llm.retry_policy import RetryPolicy
from streams.llm.usage import Usage
from streams.pipeline.config import Pipeline, compile_schema
from streams.pipeline.content_hash import content_hash
from streams.pipeline.decode import Event, decode_event
from streams.pipeline.enricher import Enricher
from streams.pipeline.output import build_enriched_record
from streams.pipeline.prompt import build_prompt, join_fields, render_fields
from streams.pipeline.trimming import (
    CUT_MARKER,
    HEAD_TAIL_CUT,
    QUOTED_HISTORY,
    SIGNATURE,
    cut_head_tail,
    remove_quoted_history,
    remove_signature,
    trim_fields,
)
from streams.settings import PricingSettings


def sample_emails(pipelines: dict[str, Pipeline]) -> dict[str, Event]:
    pipeline = pipelines["emails"]
    sources = load_pipeline_events(pipelines=["emails"])["emails"]
    return {s.event_id: decode_event(s.value, pipeline) for s in sources}


def body_of(event: Event) -> str:
    return str(event.body["data"]["body"])


def test_a_reply_loses_the_quoted_message(pipelines: dict[str, Pipeline]) -> None:
    body = body_of(sample_emails(pipelines)["eml-00005"])
    trimmed = remove_quoted_history(body)
    assert "bulletin de salaire" in trimmed  # the customer's own words
    assert "a écrit" not in trimmed
    assert "Sauf erreur de notre part" not in trimmed  # the insurer's earlier mail


def test_nested_quotes_go_with_their_reply_header(
    pipelines: dict[str, Pipeline],
) -> None:
    body = body_of(sample_emails(pipelines)["eml-00014"])
    trimmed = remove_quoted_history(body)
    assert "rebasculer mon véhicule" in trimmed
    assert ">" not in trimmed
    assert "Devis1" not in trimmed


def test_a_forward_keeps_the_forwarded_message(pipelines: dict[str, Pipeline]) -> None:
    """An adviser's forward carries the customer's mail: only its headers go."""
    body = body_of(sample_emails(pipelines)["eml-00041"])
    trimmed = remove_quoted_history(body)
    assert "La voiture est conduite par Monsieur Dupont" in trimmed
    assert "Transféré par" not in trimmed
    assert "Objet :" not in trimmed
    assert "Suite à notre bilan" not in trimmed  # the adviser's earlier mail


def test_a_reply_header_block_below_the_text_ends_the_message() -> None:
    body = (
        "Bonjour\nCi-joint le rib du compte comme demandé\nBien à vous\n\n"
        "De : conseiller@example.fr [mailto:conseiller@example.fr]\n"
        "Envoyé : lundi 4 juin 2018 10:00\nÀ : client@example.com\n"
        "Objet : Correspondance\n\nVeuillez prendre connaissance des documents"
    )
    trimmed = remove_quoted_history(body)
    assert trimmed.endswith("Bien à vous")


@pytest.mark.parametrize(
    "header",
    [
        "On Mon, 3 Jun 2024 at 10:12, Jane Roe <jane@example.com> wrote:",
        "Le lun. 3 juin 2024 à 10:12, Jane Roe <jane@example.com> a écrit :",
        "Le 3 juin 2024 à 10:12, Jane Roe <jane@example.com> a\nécrit :",
    ],
    ids=["english", "french", "french-wrapped"],
)
def test_reply_headers_in_both_languages(header: str) -> None:
    body = f"Hello,\r\nplease close my account.\r\n\r\n{header}\r\n> old text\r\n"
    assert remove_quoted_history(body) == "Hello,\nplease close my account."


def test_quoted_lines_without_a_header_are_dropped() -> None:
    body = "> you said this\nand I answer that\n>> and earlier\n"
    assert remove_quoted_history(body) == "and I answer that"


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ("Please call me.\n-- \nJane Roe\nSales, ACME", "Please call me."),
        ("Please call me.\n\nBest regards,\nJane Roe\n+1 555 0100", "Please call me."),
        (
            "Merci de me rappeler.\nCordialement,\n\nMonsieur Dupont",
            "Merci de me rappeler.",
        ),
        ("Bonjour,\nBien à vous\nMadame Dupont\nTél : 06 00 00 00 00", "Bonjour,"),
    ],
    ids=["dash-dash", "regards", "cordialement", "bien-a-vous"],
)
def test_signatures_are_removed(body: str, kept: str) -> None:
    assert remove_signature(body) == kept


def test_a_sign_off_followed_by_a_long_text_is_kept() -> None:
    body = "Cordialement,\n" + "\n".join(
        f"Ligne {n} d'un long message qui continue." for n in range(10)
    )
    assert remove_signature(body) == body


def test_the_cut_keeps_two_thirds_head_and_one_third_tail() -> None:
    words = [f"w{n}" for n in range(600)]
    text = " ".join(words)
    cut = cut_head_tail(text, 90)
    head, tail = cut.split(CUT_MARKER)
    assert text.startswith(head) and text.endswith(tail)
    marker = token_count.count_tokens(CUT_MARKER)
    assert token_count.count_tokens(head) == pytest.approx((90 - marker) * 2 / 3, abs=1)
    assert token_count.count_tokens(tail) == pytest.approx((90 - marker) / 3, abs=1)
    assert token_count.count_tokens(cut) <= 92


def test_text_under_the_limit_is_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_text: str) -> int:
        raise AssertionError("counted although the byte length settles it")

    monkeypatch.setattr(token_count, "count_tokens", refuse)
    fields = [("text", "short ticket")]
    assert trim_fields(fields, 100, join_fields) == (fields, None)


def test_steps_stop_as_soon_as_the_text_fits(pipelines: dict[str, Pipeline]) -> None:
    event = sample_emails(pipelines)["eml-00005"]
    fields = render_fields(pipelines["emails"], event)
    original = token_count.count_tokens(join_fields(fields))
    trimmed, trim = trim_fields(fields, original - 20, join_fields)
    assert trim is not None
    assert trim.steps == (QUOTED_HISTORY,)
    assert trim.original_tokens == original
    assert trim.sent_tokens == token_count.count_tokens(join_fields(trimmed))
    assert trim.sent_tokens <= original - 20
    assert [label for label, _ in trimmed] == ["subject", "body", "attachments"]


def test_a_long_mail_without_history_is_cut_in_the_middle() -> None:
    paragraph = "Je vous écris au sujet de mon contrat habitation et du sinistre. "
    body = "Bonjour,\n" + paragraph * 80 + "\nMerci de me rappeler avant vendredi."
    fields = [("subject", "Sinistre"), ("body", body), ("attachments", "[]")]
    trimmed, trim = trim_fields(fields, 200, join_fields)
    assert trim is not None and trim.steps == (HEAD_TAIL_CUT,)
    assert trim.sent_tokens <= 200
    sent_body = dict(trimmed)["body"]
    assert sent_body.startswith("Bonjour,")
    assert sent_body.endswith("avant vendredi.")
    assert CUT_MARKER in sent_body
    assert dict(trimmed)["subject"] == "Sinistre"


def test_history_signature_then_cut_in_order() -> None:
    own = "Hello, my parcel 4411 never arrived and I need it for Monday. " * 30
    body = (
        f"{own}\nKind regards,\nJane Roe\n\n"
        "On Mon, 3 Jun 2024, Support <help@example.com> wrote:\n"
        + "> We shipped your parcel yesterday.\n"
        * 40
    )
    trimmed, trim = trim_fields([("body", body)], 150, join_fields)
    assert trim is not None
    assert trim.steps == (QUOTED_HISTORY, SIGNATURE, HEAD_TAIL_CUT)
    assert trim.sent_tokens <= 150
    assert "Jane Roe" not in join_fields(trimmed)


def test_every_sample_email_fits_a_tight_limit(pipelines: dict[str, Pipeline]) -> None:
    for event in sample_emails(pipelines).values():
        fields = render_fields(pipelines["emails"], event)
        trimmed, trim = trim_fields(fields, 80, join_fields)
        assert token_count.count_tokens(join_fields(trimmed)) <= 80
        if trim is not None:
            assert trim.sent_tokens <= 80 < trim.original_tokens


def test_the_emails_pipeline_trims_its_longest_sample_mails(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = pipelines["emails"]
    limit = pipeline.config.input_token_limit
    assert limit is not None
    trimmed = {}
    for event_id, event in sample_emails(pipelines).items():
        prompt = build_prompt(pipeline, event)
        if prompt.trimmed is not None:
            trimmed[event_id] = prompt.trimmed
            assert prompt.trimmed.sent_tokens <= limit
    assert trimmed  # the sample has mails over the limit
    assert all(QUOTED_HISTORY in t.steps for t in trimmed.values())


class Echo:
    """Answers every call with one valid e-mail enrichment."""

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        content = orjson.dumps(
            {
                "language": "fr",
                "intent": "certificate_request",
                "summary": "The customer asks for a document.",
                "urgency": "low",
                "requested_action": "Send the document.",
            }
        ).decode()
        usage = Usage(prompt_cache_miss_tokens=100, completion_tokens=40)
        return ChatResponse(content, "stop", False, usage, "deepseek-flash", "r", 0.0)


def test_the_record_says_it_was_trimmed_and_hashes_the_original(
    pipelines: dict[str, Pipeline],
) -> None:
    pipeline = pipelines["emails"]
    event = sample_emails(pipelines)["eml-00029"]
    model = Echo()
    enricher = Enricher(
        model,
        policy=RetryPolicy(max_attempts=1, wait=False),
        breaker=CircuitBreaker("test"),
        prices=PriceList(PricingSettings()),
        max_in_flight=1,
    )
    enrichment = asyncio.run(enricher.enrich(pipeline, event))
    event_hash = content_hash(pipeline, event, "deepseek-flash")
    record = orjson.loads(
        build_enriched_record(
            pipeline,
            event,
            enrichment,
            dedup="miss",
            content_hash=event_hash,
            source={"topic": "t", "partition": 0, "offset": 0, "timestamp": 0},
        )
    )

    trimmed = record["enrichment_metadata"]["trimmed"]
    assert trimmed["sent_tokens"] < trimmed["original_tokens"]
    assert trimmed["steps"][0] == QUOTED_HISTORY
    sent = model.requests[0].messages[1]["content"]
    assert "Message d'origine" not in sent
    # The record keeps the original body, and the hash is of the original.
    assert record["data"]["body"] == body_of(event)
    assert event_hash == content_hash(pipeline, event, "deepseek-flash")
    compile_schema(paths.SCHEMAS_DIR, "enriched_event.schema.json")(record)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(min_size=1, max_size=1500),
    limit=st.integers(min_value=32, max_value=300),
)
def test_trimmed_text_never_exceeds_the_limit(text: str, limit: int) -> None:
    fields = [("subject", "Demande"), ("body", text)]
    trimmed, trim = trim_fields(fields, limit, join_fields)
    assert token_count.count_tokens(join_fields(trimmed)) <= limit
    if trim is None:
        assert trimmed == fields
    else:
        assert trim.sent_tokens <= limit < trim.original_tokens

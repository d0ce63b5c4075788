"""The simulator's answers: schema-valid, deterministic, and read from the text.

Prompts are built here the way the pipelines build them (fixed instructions
in the system message, ``label: value`` lines in the user message) from the
real sample tickets, e-mails and CRM contacts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.simulator.answers import build_answer, render_answer
from streams.simulator.language import detect_language
from streams.simulator.prompt import parse_event_fields, parse_requested_keys

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
PIPELINES = REPO / "config" / "pipelines"
SAMPLE_DIRS = (REPO / "data" / "sample", Path("/work/shared/data"))
TODAY = dt.date(2026, 12, 1)

TICKET_SYSTEM = (
    "You enrich support tickets. Reply with a JSON object with exactly these keys: "
    "summary, category, intent, urgency, sentiment and entities. No other text."
)
EMAIL_SYSTEM = (
    "You triage e-mails.\nReply with a json object with EXACTLY THESE KEYS:\n"
    "language, intent, summary, urgency, requested_action.\n- language: ISO code."
)
CRM_SYSTEM = (
    "Reply with a json object with exactly these keys:\n"
    "- change_summary\n- data_quality_flags\n- next_action.\nReply with json only."
)


def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    return jsonschema.Draft7Validator(schema)


TICKET_SCHEMA = _validator("ticket_enrichment.schema.json")
EMAIL_SCHEMA = _validator("email_enrichment.schema.json")
CRM_SCHEMA = _validator("crm_enrichment.schema.json")


def _instructions(pipeline: str) -> str:
    config = yaml.safe_load((PIPELINES / f"{pipeline}.yaml").read_text())
    return str(config["instructions"])


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sample(name: str) -> Path:
    """The sample file shipped with the repository, else the shared copy."""
    for directory in SAMPLE_DIRS:
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(f"sample data file {name} not found in {SAMPLE_DIRS}")


def _tickets(step: int = 90) -> list[dict[str, str]]:
    with _sample("tickets_bitext.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))[::step]


def _emails() -> list[dict[str, Any]]:
    emails: list[dict[str, Any]] = json.loads(
        _sample("emails_melusine.json").read_text()
    )
    return emails


def _contacts(step: int = 40) -> list[dict[str, Any]]:
    data = json.loads(_sample("crm_contacts_coralcloud.json").read_text())
    return [
        {key: value for key, value in record.items() if key != "attributes"}
        for record in data["records"][::step]
    ]


def _ticket_text(ticket: dict[str, str]) -> str:
    return f"text: {ticket['instruction']}"


def _email_text(email: dict[str, Any]) -> str:
    return (
        f"subject: {email['header']}\nbody: {email['body']}\n"
        f"attachments: {_compact(email['attachments'])}"
    )


def _crm_text(contact: dict[str, Any], change: str = "created") -> str:
    lines = [f"change: {change}"]
    if change == "updated":
        lines.append(f"changed_fields: {_compact(['MailingCity'])}")
        lines.append(f"previous: {_compact({'MailingCity': 'Old Town'})}")
    lines.append(f"contact: {_compact(contact)}")
    return "\n".join(lines)


@pytest.mark.parametrize("system", [TICKET_SYSTEM, _instructions("tickets")])
def test_ticket_answers_match_the_ticket_schema(system: str) -> None:
    for ticket in _tickets():
        answer = build_answer(system, _ticket_text(ticket), TODAY)
        TICKET_SCHEMA.validate(answer)
        assert list(answer) == [
            "summary",
            "category",
            "intent",
            "urgency",
            "sentiment",
            "entities",
        ]


@pytest.mark.parametrize("system", [EMAIL_SYSTEM, _instructions("emails")])
def test_email_answers_match_the_email_schema(system: str) -> None:
    for email in _emails():
        answer = build_answer(system, _email_text(email), TODAY)
        EMAIL_SCHEMA.validate(answer)


@pytest.mark.parametrize("system", [CRM_SYSTEM, _instructions("crm")])
def test_crm_answers_match_the_crm_schema(system: str) -> None:
    for contact in _contacts():
        for change in ("created", "updated"):
            answer = build_answer(system, _crm_text(contact, change), TODAY)
            CRM_SCHEMA.validate(answer)


def test_same_prompt_gives_byte_identical_answers() -> None:
    prompts = [(TICKET_SYSTEM, _ticket_text(ticket)) for ticket in _tickets(300)]
    prompts += [(EMAIL_SYSTEM, _email_text(email)) for email in _emails()[:10]]
    prompts += [(CRM_SYSTEM, _crm_text(contact)) for contact in _contacts(200)]

    first = [render_answer(build_answer(s, u, TODAY)) for s, u in prompts]
    second = [render_answer(build_answer(s, u, TODAY)) for s, u in reversed(prompts)]

    assert first == list(reversed(second))


def test_language_tells_the_one_english_email_from_the_french_ones() -> None:
    answers = [
        (email["header"], build_answer(EMAIL_SYSTEM, _email_text(email), TODAY))
        for email in _emails()
    ]

    english = [header for header, answer in answers if answer["language"] == "en"]
    french = [header for header, answer in answers if answer["language"] == "fr"]
    assert english == ["Fwd: Urgent"]
    assert len(french) == len(answers) - 1


def test_detect_language_on_short_texts() -> None:
    assert detect_language("Bonjour, je vous remercie pour votre aide.") == "fr"
    assert detect_language("Hello, thanks for the quick help with my order.") == "en"
    assert detect_language("") == "en"
    assert detect_language("12345 !!!") == "en"


def test_email_intents_follow_french_keywords() -> None:
    cases = {
        "Demande d'attestation": "certificate_request",
        "Déclaration de sinistre": "claim",
        "Résiliation du contrat auto": "termination",
        "Prélèvement en double": "payment",
        "Réclamation": "complaint",
        "Changement d'adresse": "contract_change",
        "Renseignement sur vos offres": "information_request",
        "Bonjour": "other",
    }
    for subject, intent in cases.items():
        user = f"subject: {subject}\nbody: Bonjour, merci.\nattachments: []"
        assert build_answer(EMAIL_SYSTEM, user, TODAY)["intent"] == intent, subject


def test_ticket_rules_agree_with_most_gold_labels() -> None:
    tickets = _tickets(step=5)
    answers = [build_answer(TICKET_SYSTEM, _ticket_text(t), TODAY) for t in tickets]

    category_hits = sum(
        answer["category"] == ticket["category"]
        for answer, ticket in zip(answers, tickets, strict=True)
    )
    intent_hits = sum(
        answer["intent"] == ticket["intent"]
        for answer, ticket in zip(answers, tickets, strict=True)
    )
    assert category_hits / len(tickets) > 0.85
    assert intent_hits / len(tickets) > 0.75


def test_ticket_urgency_sentiment_and_entities() -> None:
    user = (
        "text: I am angry, this is unacceptable! Refund invoice 98765432 of $120.50 "
        "immediately and write to jo@example.com about order {{Order Number}}."
    )
    answer = build_answer(TICKET_SYSTEM, user, TODAY)

    assert answer["urgency"] == "critical"
    assert answer["sentiment"] == "negative"
    assert answer["category"] == "REFUND"
    assert answer["entities"] == [
        {"type": "invoice_id", "value": "98765432"},
        {"type": "amount", "value": "$120.50"},
        {"type": "email", "value": "jo@example.com"},
    ]


def test_placeholders_are_never_entities() -> None:
    user = "text: cancel order {{Order Number}} for {{Person Name}} in {{City}}"
    answer = build_answer(TICKET_SYSTEM, user, TODAY)

    assert answer["entities"] == []
    assert answer["intent"] == "cancel_order"


def test_thanks_are_positive_and_plain_questions_neutral_and_low() -> None:
    thanks = build_answer(TICKET_SYSTEM, "text: thanks, great service, love it", TODAY)
    question = build_answer(
        TICKET_SYSTEM, "text: which payment methods do you accept", TODAY
    )

    assert thanks["sentiment"] == "positive"
    assert question["sentiment"] == "neutral"
    assert question["urgency"] == "low"
    assert question["intent"] == "check_payment_methods"


def test_crm_flags_find_each_defect() -> None:
    contact = {
        "FirstName": "frayda",
        "LastName": "DOWSING",
        "Email": "fraydadowsing.example.com",
        "MobilePhone": "12-34",
        "MailingStreet": "",
        "Birthdate": "1850-01-01",
    }
    answer = build_answer(CRM_SYSTEM, _crm_text(contact, "updated"), TODAY)

    assert answer["data_quality_flags"] == [
        "implausible_birthdate",
        "inconsistent_name_case",
        "invalid_email",
        "invalid_phone",
        "missing_address",
    ]
    assert "e-mail address" in answer["next_action"]
    CRM_SCHEMA.validate(answer)


def test_crm_flags_for_missing_fields_and_future_birthdates() -> None:
    contact = {"LastName": "Reape", "Birthdate": "2042-05-03", "MailingCity": "Paris"}
    answer = build_answer(CRM_SYSTEM, _crm_text(contact), TODAY)

    assert answer["data_quality_flags"] == [
        "implausible_birthdate",
        "missing_address",
        "missing_email",
        "missing_name",
        "missing_phone",
    ]


def test_redacted_values_count_as_present_and_unchecked() -> None:
    contact = {
        "FirstName": "Nedi",
        "LastName": "Heinsius",
        "Email": "[redacted]",
        "MobilePhone": "[redacted]",
        "MailingStreet": "[redacted]",
        "MailingCity": "Peoria",
        "Birthdate": "[redacted]",
    }
    answer = build_answer(_instructions("crm"), _crm_text(contact, "updated"), TODAY)

    assert answer["data_quality_flags"] == []
    assert answer["change_summary"].startswith("Contact updated: MailingCity changed.")
    assert "Peoria" not in answer["change_summary"]


def test_unknown_keys_get_short_strings_and_repeats_collapse() -> None:
    system = (
        "Reply with a json object with exactly these keys: summary, mood, mood, tag."
    )
    answer = build_answer(system, "text: My parcel never arrived. Please help.", TODAY)

    assert list(answer) == ["summary", "mood", "tag"]
    assert answer["mood"] == "My parcel never arrived."
    assert isinstance(answer["tag"], str) and answer["tag"]


def test_without_a_keys_sentence_the_schema_keys_of_the_event_kind_are_used() -> None:
    ticket = build_answer(
        "Be helpful; answer in json.", "text: where is my order", TODAY
    )
    email = build_answer("json please", "subject: Demande\nbody: Bonjour", TODAY)

    assert list(ticket) == list(TICKET_SCHEMA.schema["required"])
    assert set(email) == set(EMAIL_SCHEMA.schema["required"])


@pytest.mark.parametrize(
    ("sentence", "keys"),
    [
        ("Exactly these keys: a, b and c. Then stop.", ["a", "b", "c"]),
        ('exactly these keys:\n- `a`\n- "b"\n- c_d.\n', ["a", "b", "c_d"]),
        ("EXACTLY THESE KEYS: a,b,c", ["a", "b", "c"]),
        ("exactly these keys: a, b, and c.", ["a", "b", "c"]),
        ("no keys named here", []),
    ],
)
def test_parse_requested_keys(sentence: str, keys: list[str]) -> None:
    assert parse_requested_keys(sentence) == keys


def test_parse_event_fields_keeps_multiline_values_together() -> None:
    fields = parse_event_fields(
        "subject: Hello\nbody: line one\nnote: not a label\n\nline three\n"
        'attachments: ["a.pdf"]'
    )

    assert fields.values == {
        "subject": "Hello",
        "body": "line one\nnote: not a label\n\nline three",
        "attachments": '["a.pdf"]',
    }


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_ticket_text_gives_a_schema_valid_answer(text: str) -> None:
    answer = build_answer(_instructions("tickets"), f"text: {text}", TODAY)

    TICKET_SCHEMA.validate(answer)
    assert render_answer(answer) == render_answer(
        build_answer(_instructions("tickets"), f"text: {text}", TODAY)
    )


_FIELD_VALUES = st.one_of(
    st.none(), st.text(max_size=30), st.just("[redacted]"), st.integers()
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "FirstName",
                "LastName",
                "Email",
                "MobilePhone",
                "MailingStreet",
                "MailingCity",
                "Birthdate",
            ]
        ),
        _FIELD_VALUES,
    )
)
def test_any_contact_gives_a_schema_valid_answer(contact: dict[str, Any]) -> None:
    answer = build_answer(_instructions("crm"), _crm_text(contact, "updated"), TODAY)

    CRM_SCHEMA.validate(answer)

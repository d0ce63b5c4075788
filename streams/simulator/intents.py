"""Intent and category rules for tickets and e-mails.

Ticket intents are snake_case verb phrases from the support-ticket sample
data (``cancel_order``, ``track_refund`` ...); the ticket category follows
from the intent. E-mail intents are the enum of the e-mail enrichment
schema and recognise French and English wording. Rules are tried in order
and the first one whose patterns all match wins.
"""

from __future__ import annotations

import re

_Rule = tuple[str, tuple[re.Pattern[str], ...]]


def _rule(intent: str, *patterns: str) -> _Rule:
    return intent, tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)


_CANCEL = r"\bcancel|terminat|withdraw|early exit"
_ACCOUNT = r"account|\bprofile\b"
_ADDRESS = r"\baddress"
_REFUND = r"\brefund|reimb|money back|compensation|restitution|\brebat"
_INVOICE = r"\binvoice|\bbills?\b|\breceipt|\bfactur"
_PAYMENT = r"\bpay|\bcard\b|credit|debit|paypal|bank transfer"
_DELIVERY = (
    r"\bdeliver|\bshipping\b|\bship\b|\bshipment|\barriv|how long|how soon|"
    r"when will|\bexpect"
)
_ORDER = r"\border|\bpurchase|\bitem|\bproduct|\bbuy|\bbought|\bcancel"

TICKET_RULES: tuple[_Rule, ...] = (
    _rule("check_cancellation_fee", _CANCEL, r"\bfees?\b|penalt|\bcharges?\b"),
    _rule("check_cancellation_fee", r"\bfees?\b|penalt", r"early|exit|leav"),
    _rule("newsletter_subscription", r"newsletter|subscri"),
    _rule("recover_password", r"password|\bpwd\b|forgot|\bpin\b|reset"),
    _rule(
        "recover_password",
        r"\bpass\b|access key|retriev|restor|recover",
        r"profile|account|\bpass\b|access key",
    ),
    _rule(
        "registration_problems",
        r"regist|sign(?:ing)?[ -]?up",
        r"problem|issue|error|trouble|can'?t|cannot|unable|fail|notify|report",
    ),
    _rule(
        "delete_account",
        r"delet|\bclos|remov|\bcancel|terminat|deactivat|get rid",
        _ACCOUNT,
    ),
    _rule("create_account", r"creat|\bopen|\bnew\b|\bmake\b", _ACCOUNT),
    _rule("create_account", r"sign(?:ing)?[ -]?up|regist"),
    _rule("switch_account", r"switch|upgrad|downgrad|\bmove\b|\buse\b", _ACCOUNT),
    _rule("switch_account", r"chang\w* to (?:the |an? )?\w+ ?account"),
    _rule("edit_account", r"edit|updat|modif|correct|chang", _ACCOUNT),
    _rule("change_shipping_address", _ADDRESS, r"chang|updat|edit|modif|correct|wrong"),
    _rule("set_up_shipping_address", _ADDRESS),
    _rule("check_refund_policy", _REFUND, r"polic|terms|condition|in which|situation"),
    _rule(
        "track_refund",
        _REFUND,
        r"track|status|check|waiting|where is|progress|receiv|update|expect|process",
    ),
    _rule("get_refund", _REFUND),
    _rule("check_invoice", _INVOICE, r"check|\bsee\b|view|find|locat|look|where"),
    _rule("get_invoice", _INVOICE),
    _rule(
        "check_payment_methods",
        _PAYMENT,
        r"method|option|accept|allow|available|which|what|\bmodes?\b|\bways?\b",
    ),
    _rule("payment_issue", _PAYMENT),
    _rule("delivery_options", _DELIVERY, r"option|method|\btypes?\b|\bways?\b|choice"),
    _rule("delivery_options", r"order from|ship to|deliver to|send to"),
    _rule("delivery_period", _DELIVERY),
    _rule(
        "complaint",
        r"complain|claim|reclamation|\blodge\b|dissatisf|unhappy|not happy|"
        r"disappoint|angry|unacceptable|file a",
    ),
    _rule("review", r"review|feedback|opinion|comment|\brat(?:e|ing)\b|suggest"),
    _rule("cancel_order", _ORDER, r"\bcancel"),
    _rule("track_order", _ORDER, r"track|where|status|locat|check"),
    _rule(
        "change_order",
        _ORDER,
        r"chang|modif|edit|updat|switch|\badd\b|remov|delet|swap|correct",
    ),
    _rule("place_order", _ORDER),
    _rule(
        "contact_human_agent",
        r"\bhuman|\bagent|\bperson\b|representative|someone|operator|live chat",
    ),
    _rule(
        "contact_customer_service",
        r"customer (?:service|support)|contact|\bcall|phone|speak|talk|\breach",
    ),
)
"""Ordered ticket rules; the first whose patterns all match gives the intent."""

TICKET_FALLBACK_INTENT = "general_inquiry"

_TICKET_CATEGORIES: dict[str, str] = {
    "cancel_order": "ORDER",
    "change_order": "ORDER",
    "place_order": "ORDER",
    "track_order": "ORDER",
    "get_refund": "REFUND",
    "track_refund": "REFUND",
    "check_refund_policy": "REFUND",
    "get_invoice": "INVOICE",
    "check_invoice": "INVOICE",
    "check_cancellation_fee": "CANCELLATION_FEE",
    "newsletter_subscription": "NEWSLETTER",
    "recover_password": "ACCOUNT",
    "registration_problems": "ACCOUNT",
    "delete_account": "ACCOUNT",
    "create_account": "ACCOUNT",
    "switch_account": "ACCOUNT",
    "edit_account": "ACCOUNT",
    "set_up_shipping_address": "SHIPPING_ADDRESS",
    "change_shipping_address": "SHIPPING_ADDRESS",
    "check_payment_methods": "PAYMENT",
    "payment_issue": "PAYMENT",
    "delivery_options": "DELIVERY",
    "delivery_period": "DELIVERY",
    "complaint": "FEEDBACK",
    "review": "FEEDBACK",
    "contact_human_agent": "CONTACT",
    "contact_customer_service": "CONTACT",
}

_TICKET_GOALS: dict[str, str] = {
    "cancel_order": "cancel an order",
    "change_order": "change an order",
    "place_order": "place an order",
    "track_order": "track an order",
    "get_refund": "get a refund",
    "track_refund": "follow up on a refund",
    "check_refund_policy": "understand the refund policy",
    "get_invoice": "get an invoice",
    "check_invoice": "check an invoice",
    "check_cancellation_fee": "know the cancellation fee",
    "newsletter_subscription": "manage a newsletter subscription",
    "recover_password": "recover a password",
    "registration_problems": "solve a registration problem",
    "delete_account": "delete an account",
    "create_account": "create an account",
    "switch_account": "switch to another account type",
    "edit_account": "edit account details",
    "set_up_shipping_address": "set up a shipping address",
    "change_shipping_address": "change a shipping address",
    "check_payment_methods": "know the accepted payment methods",
    "payment_issue": "solve a payment problem",
    "delivery_options": "know the delivery options",
    "delivery_period": "know when a delivery will arrive",
    "complaint": "file a complaint",
    "review": "leave feedback",
    "contact_human_agent": "talk to a human agent",
    "contact_customer_service": "contact customer service",
}

EMAIL_RULES: tuple[_Rule, ...] = (
    _rule("certificate_request", r"attestation|certificat"),
    _rule("claim", r"sinistre|accident|d[ée]g[âa]t|damage|\bclaim\b|\bvol\b|theft"),
    _rule("termination", r"r[ée]siliation|r[ée]silier|terminat|\bcancel"),
    _rule(
        "payment",
        r"paiement|pr[ée]l[èe]vement|r[èe]glement|\bpayment|rembourse|\bfacture",
    ),
    _rule("complaint", r"r[ée]clamation|m[ée]content|complain|insatisf|inadmissible"),
    _rule(
        "contract_change",
        r"changement|modification|modifier|\bchanger|\bchange\b|immatriculation|"
        r"d[ée]m[ée]nag|nouvelle adresse|avenant",
    ),
    _rule(
        "information_request",
        r"question|renseignement|information|savoir|\bdevis\b|\bquote\b",
    ),
)
"""Ordered e-mail rules; the subject is tried before the body."""

EMAIL_FALLBACK_INTENT = "other"

_EMAIL_TOPICS: dict[str, str] = {
    "certificate_request": "requesting a certificate",
    "claim": "reporting a claim",
    "complaint": "making a complaint",
    "contract_change": "asking for a contract change",
    "information_request": "asking for information",
    "payment": "about a payment",
    "termination": "asking to terminate a contract",
    "other": "about a general matter",
}

_EMAIL_ACTIONS: dict[str, str] = {
    "certificate_request": "Send the requested insurance certificate to the customer.",
    "claim": "Open a claim file and ask the customer for the details of the incident.",
    "complaint": "Review the complaint and reply to the customer with a resolution.",
    "contract_change": (
        "Update the contract with the requested change and confirm it to the customer."
    ),
    "information_request": (
        "Answer the customer's question with the information asked for."
    ),
    "payment": "Check the payment status and confirm it to the customer.",
    "termination": (
        "Process the contract termination and send the customer a confirmation."
    ),
    "other": "Read the e-mail and route it to the team in charge.",
}


def _first_match(rules: tuple[_Rule, ...], text: str) -> str | None:
    for intent, patterns in rules:
        if all(pattern.search(text) for pattern in patterns):
            return intent
    return None


def ticket_intent(text: str) -> str:
    """Return the snake_case intent of a support ticket."""
    return _first_match(TICKET_RULES, text) or TICKET_FALLBACK_INTENT


def ticket_category(intent: str) -> str:
    """Return the schema category of a ticket intent, ``OTHER`` when unknown."""
    return _TICKET_CATEGORIES.get(intent, "OTHER")


def ticket_goal(intent: str) -> str:
    """Return what the customer wants, as a verb phrase ("cancel an order")."""
    return _TICKET_GOALS.get(intent, "get help")


def email_intent(subject: str, body: str) -> str:
    """Return the e-mail intent, trying the subject first, then the body."""
    return (
        _first_match(EMAIL_RULES, subject)
        or _first_match(EMAIL_RULES, body)
        or EMAIL_FALLBACK_INTENT
    )


def email_topic(intent: str) -> str:
    """Return a phrase describing an e-mail intent ("requesting a certificate")."""
    return _EMAIL_TOPICS.get(intent, _EMAIL_TOPICS[EMAIL_FALLBACK_INTENT])


def email_action(intent: str) -> str:
    """Return the one-sentence action that answers an e-mail intent."""
    return _EMAIL_ACTIONS.get(intent, _EMAIL_ACTIONS[EMAIL_FALLBACK_INTENT])

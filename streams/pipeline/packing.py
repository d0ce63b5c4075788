"""Request packing: several small events answered by one LLM call.

A pipeline with a ``packing`` section gets a :class:`RequestPacker`. Events
that need a call (the worker deduplicates first, so only the lead of a content
hash arrives here) wait in the open pack until it holds ``max_items`` events,
until the next event would push the estimated prompt past
``max_prompt_tokens``, or ``max_wait_ms`` after the pack's first event,
whichever comes first. The number of items also stops where ``max_tokens`` x
items would pass ``max_completion_tokens``, so no item gets less room than it
would alone.

What goes alone, through the normal single-event path
(:meth:`Enricher.enrich`, with its retries):

* an event whose estimated request is too long to share one;
* an event whose text is over the pipeline's ``input_token_limit``, so it is
  trimmed the way a single request trims it;
* an event whose text contains an item marker (``<item``, ``</item``);
* a pack that closes with a single event;
* an item whose answer is missing, repeated or outside the output schema
  (``retried_alone``);
* every item of a packed call that failed as a whole: an error status, a
  timeout, an answer cut off, blank or not JSON (``fallback``). The packed
  call is not retried as a pack.

Usage and cost of a packed call are split over its items (the rule is in
:mod:`streams.pipeline.packed_request`); an item that then goes alone adds
its own calls, so an event's recorded usage and cost are everything spent on
it, and the events' figures add up to the provider's bill. A packed call
counts as one attempt of each of its items.

:class:`PackingRouter` has the worker's view of an enricher: it sends each
event to its pipeline's packer, or straight to the enricher when the
pipeline does not pack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.errors import PermanentError, RetryableError
from streams.llm.client import ChatRequest
from streams.llm.pricing import PriceList
from streams.llm.token_count import fits_within
from streams.llm.usage import Usage
from streams.pipeline.config import PackingConfig, Pipeline
from streams.pipeline.decode import Event
from streams.pipeline.enricher import Enricher, Enrichment, EnrichmentFailed
from streams.pipeline.packed_request import (
    ITEM_MARKER,
    ITEM_OVERHEAD_TOKENS,
    PACKING_INSTRUCTION,
    PackedAnswer,
    build_packed_messages,
    estimate_tokens,
    read_packed_answer,
    split_usage,
)
from streams.pipeline.prompt import render_event_text

logger = logging.getLogger(__name__)

PackObserver = Callable[[str, str, int], None]
"""Called with (pipeline, outcome, items) as items leave a pack.

Outcomes: ``answered`` (answered in a packed call), ``retried_alone`` (its
answer was missing or invalid), ``fallback`` (the packed call failed as a
whole), ``alone`` (never shared a call: too long, a marker, or by itself).
"""


@dataclass
class PackingStats:
    """What one pipeline's packer did."""

    packed_calls: int = 0
    failed_calls: int = 0
    answered: int = 0
    retried_alone: int = 0
    fallback: int = 0
    alone: int = 0


@dataclass(frozen=True, slots=True)
class _ItemOutcome:
    """What the pack did for one item: its answer, or the order to go alone."""

    values: dict[str, Any] | None
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 0
    model: str = ""
    request_id: str | None = None


_GO_ALONE = _ItemOutcome(values=None)


@dataclass(eq=False, slots=True)
class _Item:
    text: str
    tokens: int
    outcome: asyncio.Future[_ItemOutcome]


class RequestPacker:
    """Collects one pipeline's events into packed requests.

    Args:
        pipeline: The pipeline, whose ``packing`` section is set.
        enricher: Makes the calls, packed and single.
        prices: Prices the share of each item.
        observe: Optional callback as items leave a pack, for metrics.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        enricher: Enricher,
        prices: PriceList,
        observe: PackObserver | None = None,
    ) -> None:
        if pipeline.config.packing is None:
            raise ValueError(f"pipeline {pipeline.name} does not pack")
        self._pipeline = pipeline
        self._settings: PackingConfig = pipeline.config.packing
        self._enricher = enricher
        self._prices = prices
        self._observe = observe
        self._base_tokens = estimate_tokens(pipeline.config.instructions) + (
            estimate_tokens(PACKING_INSTRUCTION)
        )
        per_item_budget = pipeline.config.max_tokens
        self._max_items = min(
            self._settings.max_items,
            self._settings.max_completion_tokens // per_item_budget,
        )
        if self._max_items < 2:
            logger.warning(
                "packing.disabled pipeline=%s max_tokens=%d max_completion_tokens=%d "
                "consequence=every_event_sent_alone",
                pipeline.name,
                per_item_budget,
                self._settings.max_completion_tokens,
            )
        self._pending: list[_Item] = []
        self._pending_tokens = 0
        self._timer: asyncio.TimerHandle | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self.stats = PackingStats()

    async def enrich(self, event: Event) -> Enrichment:
        """Enriches one event, in a pack when it fits, else alone.

        Raises:
            EnrichmentFailed: As :meth:`Enricher.enrich`; usage and cost
                include the event's share of a packed call.
        """
        text = render_event_text(self._pipeline, event)
        limit = self._pipeline.config.input_token_limit
        tokens = estimate_tokens(text) + ITEM_OVERHEAD_TOKENS
        if (
            self._max_items < 2
            or ITEM_MARKER.search(text)
            or (limit is not None and not fits_within(text, limit))
            or self._base_tokens + tokens > self._settings.max_prompt_tokens
        ):
            self._count("alone", 1)
            return await self._enricher.enrich(self._pipeline, event)

        outcome = await self._join_pack(text, tokens)
        if outcome.values is not None:
            return Enrichment(
                values=outcome.values,
                model=outcome.model,
                usage=outcome.usage,
                cost_usd=outcome.cost_usd,
                latency_s=outcome.latency_s,
                attempts=outcome.attempts,
                request_id=outcome.request_id,
            )
        return await self._enrich_alone(event, outcome)

    async def _join_pack(self, text: str, tokens: int) -> _ItemOutcome:
        limit = self._settings.max_prompt_tokens
        if self._pending and self._base_tokens + self._pending_tokens + tokens > limit:
            self._close_pack()
        item = _Item(text, tokens, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        self._pending_tokens += tokens
        if len(self._pending) >= self._max_items:
            self._close_pack()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self._settings.max_wait_ms / 1000, self._close_pack
            )
        # A cancelled caller cancels its future; the pack then leaves it out.
        return await item.outcome

    async def _enrich_alone(self, event: Event, shared: _ItemOutcome) -> Enrichment:
        """The single-event path, with what the pack already spent added."""
        try:
            single = await self._enricher.enrich(self._pipeline, event)
        except EnrichmentFailed as exc:
            usage = exc.usage + shared.usage
            raise EnrichmentFailed(
                exc.cause,
                attempts=exc.attempts + shared.attempts,
                usage=usage,
                cost_usd=exc.cost_usd + shared.cost_usd,
                model=exc.model,
            ) from exc
        return dataclasses.replace(
            single,
            usage=single.usage + shared.usage,
            cost_usd=single.cost_usd + shared.cost_usd,
            latency_s=single.latency_s + shared.latency_s,
            attempts=single.attempts + shared.attempts,
        )

    def _close_pack(self) -> None:
        """Sends the open pack: as one call, or its only item alone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items = [item for item in self._pending if not item.outcome.done()]
        self._pending = []
        self._pending_tokens = 0
        if not items:
            return
        if len(items) == 1:
            self._count("alone", 1)
            items[0].outcome.set_result(_GO_ALONE)
            return
        call = asyncio.create_task(self._send(items))
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _send(self, items: list[_Item]) -> None:
        """Makes one packed call and settles every item's outcome."""
        pipeline = self._pipeline
        ids = [str(index) for index in range(1, len(items) + 1)]
        model = self._enricher.model_for(pipeline)
        max_tokens = min(
            pipeline.config.max_tokens * len(items),
            self._settings.max_completion_tokens,
        )
        request = ChatRequest(
            model, build_packed_messages(pipeline, [i.text for i in items]), max_tokens
        )
        self.stats.packed_calls += 1
        started = time.monotonic()
        try:
            response, answer = await self._enricher.call_once(
                pipeline, request, lambda r: read_packed_answer(pipeline, r, ids)
            )
        except (RetryableError, PermanentError) as exc:
            spent = _ItemOutcome(None, attempts=1)
            self._fall_back(items, exc.reason, [spent] * len(items))
            return
        except asyncio.CancelledError:
            for item in items:
                item.outcome.cancel()
            raise
        except Exception as exc:
            # Unclassified (a fatal configuration error): every caller raises it.
            for item in items:
                if not item.outcome.done():
                    item.outcome.set_exception(exc)
            return

        latency_s = time.monotonic() - started
        weights = [answer.answer_bytes.get(item_id, 0) for item_id in ids]
        shares = split_usage(response.usage, weights)
        priced_at = datetime.now(UTC)
        outcomes = [
            _ItemOutcome(
                values=None if answer.failure else answer.values.get(item_id),
                usage=share,
                cost_usd=self._prices.cost_usd(model, share, priced_at),
                latency_s=latency_s,
                attempts=1,
                model=response.model,
                request_id=response.request_id,
            )
            for item_id, share in zip(ids, shares, strict=True)
        ]
        if answer.failure is not None:
            self._fall_back(items, answer.failure, outcomes)
            return
        self._report_items(ids, answer)
        for item, outcome in zip(items, outcomes, strict=True):
            if not item.outcome.done():
                item.outcome.set_result(outcome)

    def _fall_back(
        self, items: list[_Item], reason: str, outcomes: list[_ItemOutcome]
    ) -> None:
        """Every item goes alone, carrying what the failed call spent on it."""
        self.stats.failed_calls += 1
        self._count("fallback", len(items))
        logger.warning(
            "packing.call_failed pipeline=%s reason=%s items=%d "
            "consequence=each_item_enriched_alone",
            self._pipeline.name,
            reason,
            len(items),
        )
        for item, outcome in zip(items, outcomes, strict=True):
            if not item.outcome.done():
                item.outcome.set_result(dataclasses.replace(outcome, values=None))

    def _report_items(self, ids: list[str], answer: PackedAnswer) -> None:
        self._count("answered", len(answer.values))
        if answer.problems:
            self._count("retried_alone", len(answer.problems))
            logger.warning(
                "packing.items_invalid pipeline=%s items=%d of=%d reasons=%s "
                "consequence=each_enriched_alone",
                self._pipeline.name,
                len(answer.problems),
                len(ids),
                ",".join(sorted(set(answer.problems.values()))),
            )

    def _count(self, outcome: str, items: int) -> None:
        setattr(self.stats, outcome, getattr(self.stats, outcome) + items)
        if self._observe is not None:
            self._observe(self._pipeline.name, outcome, items)


class PackingRouter:
    """The enrichment step as the worker sees it, with packing where configured.

    Args:
        enricher: Makes every call.
        prices: Prices the items' shares of packed calls.
        pipelines: The pipelines; those with a ``packing`` section get a packer.
        observe: Optional callback as items leave a pack, for metrics.
    """

    def __init__(
        self,
        enricher: Enricher,
        prices: PriceList,
        pipelines: Iterable[Pipeline],
        observe: PackObserver | None = None,
    ) -> None:
        self._enricher = enricher
        self.packers = {
            pipeline.name: RequestPacker(pipeline, enricher, prices, observe)
            for pipeline in pipelines
            if pipeline.config.packing is not None
        }

    @property
    def calls(self) -> int:
        """LLM calls made so far, packed calls counted once."""
        return self._enricher.calls

    @property
    def retries(self) -> int:
        """Retries scheduled so far by the single-event path."""
        return self._enricher.retries

    def model_for(self, pipeline: Pipeline) -> str:
        """The model this pipeline's calls use."""
        return self._enricher.model_for(pipeline)

    async def enrich(self, pipeline: Pipeline, event: Event) -> Enrichment:
        """Enriches one event, through its pipeline's packer when it has one."""
        packer = self.packers.get(pipeline.name)
        if packer is None:
            return await self._enricher.enrich(pipeline, event)
        return await packer.enrich(event)

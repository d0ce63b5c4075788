"""Which offset is safe to commit, per partition, when work finishes out of order.

Records of one partition are processed concurrently and finish in any order.
The committable offset of a partition is the lowest offset still unfinished,
or one past the highest offset received when everything received is finished:
everything below it has its output acknowledged by the broker, so a restart
from it loses nothing. Offsets are tracked as they are received (they rise
within a partition; gaps from compaction or transaction markers are harmless).

Each assignment of a partition gets a new :class:`PartitionOffsets`; work that
belongs to a revoked assignment holds the old object, so its late completion
cannot touch the offsets of a later assignment.

Cost: ``received`` and ``finish`` are O(log n), ``committable`` amortised O(log n).
"""

from __future__ import annotations

import heapq


class PartitionOffsets:
    """Unfinished offsets of one partition assignment."""

    __slots__ = ("_done", "_heap", "_highest", "committed", "revoked")

    def __init__(self, committed: int | None = None) -> None:
        self._heap: list[int] = []
        self._done: set[int] = set()
        self._highest: int | None = None
        self.committed = committed
        """The last offset committed for this assignment, if any."""
        self.revoked = False
        """Set when the partition is revoked: late completions are dropped."""

    def received(self, offset: int) -> None:
        """Starts tracking a record; offsets must arrive in rising order."""
        if self._highest is not None and offset <= self._highest:
            raise ValueError(
                f"offset {offset} received after {self._highest}; offsets must rise"
            )
        self._highest = offset
        heapq.heappush(self._heap, offset)

    def finish(self, offset: int) -> None:
        """Marks a received record as done (its output is acknowledged)."""
        self._done.add(offset)

    @property
    def pending(self) -> int:
        """Records received and not finished."""
        return len(self._heap) - len(self._done)

    def committable(self) -> int | None:
        """The offset to commit: everything below it is finished.

        Returns:
            None when nothing was received in this assignment.
        """
        heap, done = self._heap, self._done
        while heap and heap[0] in done:
            done.discard(heapq.heappop(heap))
        if heap:
            return heap[0]
        if self._highest is None:
            return None
        return self._highest + 1

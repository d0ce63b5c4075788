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

    __slots__ = (
        "_commit_points",
        "_committed_count",
        "_done",
        "_heap",
        "_highest",
        "_received",
        "_released",
        "committed",
        "revoked",
    )

    def __init__(self, committed: int | None = None) -> None:
        self._heap: list[int] = []
        self._done: set[int] = set()
        self._highest: int | None = None
        self._received = 0
        self._released = 0
        self._committed_count = 0
        self._commit_points: dict[int, int] = {}
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
        self._received += 1
        heapq.heappush(self._heap, offset)

    def finish(self, offset: int) -> None:
        """Marks a received record as done (its output is acknowledged)."""
        self._done.add(offset)

    @property
    def pending(self) -> int:
        """Records received and not finished."""
        return len(self._heap) - len(self._done)

    @property
    def uncommitted(self) -> int:
        """Records received and not yet below the committed offset.

        This is what a crash now could make the next owner redo, so the
        worker bounds it, not just the unfinished records.
        """
        return self._received - self._committed_count

    def mark_committed(self, position: int) -> None:
        """Records that ``position`` (from :meth:`committable`) was committed.

        Commits may be acknowledged late or out of order; a position older
        than the last one recorded changes nothing.
        """
        released = self._commit_points.pop(position, None)
        for older in [p for p in self._commit_points if p < position]:
            del self._commit_points[older]
        if self.committed is not None and position <= self.committed:
            return
        self.committed = position
        if released is not None:
            self._committed_count = max(self._committed_count, released)

    def committable(self) -> int | None:
        """The offset to commit: everything below it is finished.

        Returns:
            None when nothing was received in this assignment.
        """
        heap, done = self._heap, self._done
        while heap and heap[0] in done:
            done.discard(heapq.heappop(heap))
            self._released += 1
        if heap:
            position = heap[0]
        elif self._highest is None:
            return None
        else:
            position = self._highest + 1
        self._commit_points[position] = self._released
        return position

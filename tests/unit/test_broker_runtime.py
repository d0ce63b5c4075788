"""The local broker's generated settings."""

from __future__ import annotations

import base64

from streams.broker.runtime import new_cluster_id


def test_cluster_ids_never_start_with_a_dash() -> None:
    ids = [new_cluster_id() for _ in range(5_000)]
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)

"""``streams bench``: throughput, latency, CPU and memory against peers.

Every contender (our worker, a naive one-call-at-a-time consumer, a
faust-streaming agent, a plain pass-through) runs as its own process on the
same local broker, the same simulator and the same events, so its CPU time
and peak memory can be read from ``/proc``. See ``docs/benchmark.md``.
"""

"""Running a coroutine on the fastest event loop available.

uvloop (libuv) runs the same asyncio programs with far less CPU per socket
event than the standard loop; the worker and the simulator spend most of
their time in socket events, so they run on it where it is installed (Linux
and macOS). ``STREAMS_EVENT_LOOP=asyncio`` selects the standard loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` to completion on uvloop when available, else asyncio."""
    if os.environ.get("STREAMS_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            logger.debug("event_loop.standard reason=uvloop_not_installed")
        else:
            return uvloop.run(main)
    return asyncio.run(main)

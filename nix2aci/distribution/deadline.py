"""A network exchange bounded in time as a whole.

A socket's timeout bounds each read only: a server that sends a byte now and then holds
a request for ever. So the exchange runs in a daemon thread (it ends with the process)
and is given up past its deadline.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PastDeadline(Exception):
    """The exchange gave no whole answer within its deadline."""


def within(seconds: float, exchange: Callable[[], T]) -> T:
    """What ``exchange()`` returns, run in a daemon thread; what it raises is raised here. Raises PastDeadline
    when it has not ended within ``seconds``."""
    outcome: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            outcome.put((True, exchange()))
        except Exception as error:  # handed to the caller's thread
            outcome.put((False, error))

    threading.Thread(target=run, daemon=True).start()
    try:
        succeeded, found = outcome.get(timeout=seconds)
    except queue.Empty:
        raise PastDeadline() from None
    if not succeeded:
        raise found
    return found

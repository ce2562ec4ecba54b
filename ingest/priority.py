"""Reads before writes: a search in progress holds back the next step of an index write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadsFirst:
    """Counts the reads in progress; a writer waits at each step until there are none.

    Searches and the embedding of a question's sentences take the same two cores as a
    background write; letting them run alone keeps an answer as fast while a job indexes. A
    write waits at most `max_wait_s` per step, so a steady stream of questions slows indexing
    but never stops it.
    """

    def __init__(self, max_wait_s: float = 2.0):
        self.max_wait_s = max_wait_s
        self._readers = 0
        self._changed = threading.Condition()

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._changed:
            self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    def before_write_step(self) -> None:
        """Wait until no read is in progress, or `max_wait_s` at most."""
        with self._changed:
            self._changed.wait_for(lambda: self._readers == 0, self.max_wait_s)

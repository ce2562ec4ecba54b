"""Between the steps of an index write: searches in progress go first; an ending process stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WritesInterrupted(BaseException):
    """The process is ending: the write stops at its step, as a crash would stop it.

    A BaseException, like KeyboardInterrupt: it must pass every handler that reports a file as
    failed, since the file is not bad and is redone at the next start.
    """


class WriteSteps:
    """Counts the reads in progress; a writer waits at each step until there are none.

    Searches and the embedding of a question's sentences take the same two cores as a
    background write; letting them run alone keeps an answer as fast while a job indexes. A
    write waits at most `max_wait_s` per step, so a steady stream of questions slows indexing
    but never stops it. After `interrupt()` every step raises WritesInterrupted instead.
    """

    def __init__(self, max_wait_s: float = 2.0):
        self.max_wait_s = max_wait_s
        self._readers = 0
        self._interrupted = False
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
            self._changed.wait_for(lambda: self._readers == 0 or self._interrupted, self.max_wait_s)
            if self._interrupted:
                raise WritesInterrupted

    def interrupt(self) -> None:
        """Make every write stop at its next step, from now on."""
        with self._changed:
            self._interrupted = True
            self._changed.notify_all()

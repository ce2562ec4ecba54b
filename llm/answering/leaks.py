"""Keep the app's secrets and its system prompt out of answers, even while they stream."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

REDACTED = "[redacted]"
WITHHELD_ANSWER = (
    "I can't share my instructions. Ask me about your documents and I will answer from them."
)
# Eight words in a row from the system prompt is a quotation, not a coincidence.
PROMPT_RUN_WORDS = 8
# Shorter values (an empty or toy password) would redact ordinary words.
MIN_SECRET_CHARS = 6
_WORD = re.compile(r"[a-z0-9]+")


class LeakGuard:
    """Filters answer text: secrets become [redacted]; quoting the system prompt withholds all.

    A stream holds back only the tail that could still become a secret, so the words go out
    as they come.
    """

    def __init__(self, secrets: Sequence[str], system_prompt: str) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len)[::-1]
        words = _WORD.findall(system_prompt.lower())
        self.withheld = False
        self._runs = {
            tuple(words[i : i + PROMPT_RUN_WORDS]) for i in range(len(words) - PROMPT_RUN_WORDS + 1)
        }

    def quotes_prompt(self, text: str) -> bool:
        words = _WORD.findall(text.lower())
        return any(
            tuple(words[i : i + PROMPT_RUN_WORDS]) in self._runs
            for i in range(len(words) - PROMPT_RUN_WORDS + 1)
        )

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def stream(self, pieces: Iterable[str]) -> Iterator[str]:
        """The pieces, redacted; once the text quotes the system prompt, the withheld answer.

        What was streamed before that point is at most a few words of the prompt, and `withheld`
        tells the caller to keep the withheld answer instead of the text.
        """
        text, sent = "", 0
        for piece in pieces:
            text += piece
            if self.quotes_prompt(text):
                self.withheld = True
                yield f"\n\n{WITHHELD_ANSWER}"
                return
            redacted = self.redact(text)
            safe = len(redacted) - self._held_back(redacted)
            if safe > sent:
                yield redacted[sent:safe]
                sent = safe
        redacted = self.redact(text)
        if len(redacted) > sent:
            yield redacted[sent:]

    def _held_back(self, text: str) -> int:
        """Length of the longest tail of `text` that starts some secret."""
        longest = 0
        for secret in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), longest, -1):
                if secret.startswith(text[-size:]):
                    longest = size
                    break
        return longest

"""Keys for cached answers: what makes two questions "the same" for caching purposes."""

from __future__ import annotations

import hashlib
import re
import unicodedata


def normalize_question(question: str) -> str:
    """Case, accents' composition, spacing and trailing punctuation do not change the answer."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" ?!.")


def answer_cache_key(
    question: str,
    index_id: str,
    index_version: int,
    provider: str,
    model: str,
    temperature: float,
    top_k: int,
    scope: str = "",
) -> str:
    """A digest of everything an answer depends on, the documents the asker may read included;
    a new index version makes old keys unused."""
    parts = [
        normalize_question(question),
        index_id,
        str(index_version),
        provider,
        model,
        f"{temperature:.3f}",
        str(top_k),
        scope,
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

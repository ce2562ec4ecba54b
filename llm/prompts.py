"""The prompts as data: grounded answering, question condensing, and how sources are numbered."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from ingest.records import SearchHit

# Short on purpose: the local model (SmolLM2-135M) is tiny and every token counts in its window.
ANSWER_SYSTEM = (
    "You answer questions about the user's documents. "
    "Use only the numbered sources in <context>. "
    "Cite sources by number, like [1] or [2]. "
    "If the context does not contain the answer, say so plainly. "
    "Be concise."
)

ANSWER_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", ANSWER_SYSTEM),
        MessagesPlaceholder("history", optional=True),
        ("human", "<context>\n{context}\n</context>\n\n<question>{question}</question>"),
    ]
)

# The conversation goes in as plain text rather than as chat turns: a tiny model given chat turns
# tends to carry on the conversation instead of rewriting the question.
CONDENSE_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Rewrite the follow-up question so it can be understood without the conversation. "
            "Output only the rewritten question.",
        ),
        ("human", "Conversation:\n{conversation}\n\nFollow-up question: {question}"),
    ]
)


def format_source(number: int, hit: SearchHit) -> str:
    """One numbered source as the model sees it: `[1] (file.pdf, page 3)` then its text."""
    return f"[{number}] ({hit.source}, page {hit.page})\n{hit.text.strip()}"


def format_context(hits: Sequence[SearchHit]) -> str:
    """The sources numbered from 1 in the given (retrieval) order, blank-line separated."""
    return "\n\n".join(format_source(number, hit) for number, hit in enumerate(hits, start=1))


def format_conversation(history: Sequence[tuple[str, str]]) -> str:
    """(user, assistant) turns as `User: ...` / `Assistant: ...` lines for the condense prompt."""
    return "\n".join(f"User: {user}\nAssistant: {assistant}" for user, assistant in history)

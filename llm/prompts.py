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

# Added when even the best source is a weak match (below the low-relevance threshold).
LOW_RELEVANCE_NOTE = (
    " These sources match the question only weakly: unless one clearly answers it, "
    "say that the documents do not seem to contain the answer."
)


def _answer_prompt(system: str) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [
            ("system", system),
            MessagesPlaceholder("history", optional=True),
            ("human", "<context>\n{context}\n</context>\n\n<question>{question}</question>"),
        ]
    )


ANSWER_PROMPT = _answer_prompt(ANSWER_SYSTEM)
LOW_RELEVANCE_PROMPT = _answer_prompt(ANSWER_SYSTEM + LOW_RELEVANCE_NOTE)

# The conversation goes in as text, not chat turns (a tiny model would carry on chatting), and two
# worked examples: without them SmolLM2 tends to answer or ramble instead of rewriting.
CONDENSE_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Rewrite the last question so it makes sense on its own. Output only the question.",
        ),
        (
            "human",
            "User: Tell me about the Acme 5 phone.\nAssistant: It has a 6-inch screen.\n"
            "Last question: How heavy is it?",
        ),
        ("ai", "How heavy is the Acme 5 phone?"),
        (
            "human",
            "User: What does the lease say about pets?\nAssistant: Cats are allowed [1].\n"
            "Last question: And dogs?",
        ),
        ("ai", "What does the lease say about dogs?"),
        ("human", "{conversation}\nLast question: {question}"),
    ]
)
# Enough of an earlier answer to know what it was about; the rest only costs prompt time.
CONVERSATION_ANSWER_CHARS = 300


def format_source(number: int, hit: SearchHit) -> str:
    """One numbered source as the model sees it: `[1] (file.pdf, page 3)` then its text."""
    return f"[{number}] ({hit.source}, page {hit.page})\n{hit.text.strip()}"


def format_context(hits: Sequence[SearchHit]) -> str:
    """The sources numbered from 1 in the given (retrieval) order, blank-line separated."""
    return "\n\n".join(format_source(number, hit) for number, hit in enumerate(hits, start=1))


def format_conversation(history: Sequence[tuple[str, str]]) -> str:
    """(user, assistant) turns as `User:` / `Assistant:` lines, long answers cut short."""
    lines = []
    for user, assistant in history:
        answer = " ".join(assistant.split())
        if len(answer) > CONVERSATION_ANSWER_CHARS:
            answer = answer[:CONVERSATION_ANSWER_CHARS].rsplit(" ", 1)[0] + " …"
        lines.append(f"User: {user}\nAssistant: {answer}")
    return "\n".join(lines)

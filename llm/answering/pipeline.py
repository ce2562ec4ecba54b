"""The answering pipeline: condense, retrieve, pick the evidence, prompt, stream, attribute."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableLambda, ensure_config

from ingest.instructions import instruction_flag
from ingest.records import SearchHit, location_label
from llm.answering.attribution import (
    Attribution,
    EmbedFn,
    Evidence,
    attribute,
    before_repeat,
    cited_numbers,
    finished_part,
    repeat_start,
)
from llm.answering.evidence import select_evidence
from llm.answering.extractive import NO_ANSWER, extractive_answer, terms
from llm.answering.leaks import WITHHELD_ANSWER, LeakGuard
from llm.answering.prompts import (
    ANSWER_PROMPT,
    ANSWER_SYSTEM,
    CONDENSE_PROMPT,
    earlier_question,
    format_context,
    format_conversation,
    format_source,
)
from llm.models.choice import EXTRACTIVE_MODEL, ChatModelChoice
from llm.models.llama import LlamaCppChatModel, message_dicts
from llm.retrieval.fusion import reciprocal_rank_fusion
from llm.retrieval.modes import FUSION_DEPTH, is_low_relevance
from llm.retrieval.retriever import IndexRetriever, SearchFn, document_to_hit

MAX_HISTORY_TURNS = 3
# A follow-up's search beside the previous question counts half as much as its own search
# (0.3–0.7 measured alike on tests/fixtures/followups and on topic changes).
FOLLOW_UP_CONTEXT_WEIGHT = 0.5
CONDENSE_MAX_TOKENS = 96
# Role markers and separators the chat template adds per message, when tokens are only estimated.
MESSAGE_OVERHEAD_TOKENS = 6
# Slack for the estimate being short and for the model's first generated tokens.
SAFETY_TOKENS = 16
# Below this there is no point in sending sources: older history turns are dropped first.
MIN_CONTEXT_TOKENS = 128

NO_HITS_ANSWER = (
    "I found no passage to answer from: either no documents are indexed yet, "
    "or none of them matched the question."
)
NO_ROOM_ANSWER = (
    "The question leaves no room for any document passage in the model's context window; "
    "ask a shorter question or raise the context window."
)
EMPTY_ANSWER = "The model returned an empty answer; try rephrasing the question."
# Said instead of an answer when even the best passage is a weak match: given only weak matches,
# a small model still answers, and invents what it cannot find (measured: "268°C" for a boiling
# point no document mentions).
LOW_RELEVANCE_ANSWER = (
    "The documents do not seem to contain the answer to this question: even the closest "
    "passages match it only weakly. The sources below are the nearest matches, if you want to "
    "check them."
)

# Words by which a follow-up points back at the conversation instead of naming its topic.
_REFERS_BACK = re.compile(
    r"\b(it|its|this|that|these|those|they|them|their|he|she|his|her)\b", re.I
)
_CONDENSE_LABEL = re.compile(r"^(standalone|rewritten|follow-up)?\s*question\s*:\s*", re.I)


@dataclass(frozen=True)
class Source:
    """A passage the answer was given, numbered as the prompt numbered it."""

    number: int
    doc_id: str
    source: str
    page: int
    chunk_index: int
    score: float
    text: str
    # Why the passage reads as instructions to a model, when it does (those sentences are
    # never sent to the model).
    flag: str | None = None
    # The part's name when "page N" would be wrong ("slide 3"), and whether OCR read its text.
    location: str | None = None
    ocr: bool = False

    @property
    def where(self) -> str:
        return location_label(self.page, self.location, self.ocr)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        """A source as a trace keeps it (the fields of `asdict`)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    @classmethod
    def from_hit(cls, number: int, hit: SearchHit) -> Source:
        return cls(
            number,
            hit.doc_id,
            hit.source,
            hit.page,
            hit.chunk_index,
            hit.score,
            hit.text,
            instruction_flag(hit.text),
            hit.location,
            hit.ocr,
        )


@dataclass
class AnswerResult:
    """Everything about one answered question; `usage` covers every model call it made."""

    answer: str
    sources: list[Source]
    question: str
    standalone_question: str
    prompt_messages: list[dict[str, str]]
    provider: str
    model: str
    usage: Usage
    timings: Timings
    run_id: str | None = None
    # Even the best passage scored below the low-relevance threshold (or none was found).
    low_relevance: bool = False
    # The text as the model wrote it; `answer` is the same with its citations checked.
    raw_answer: str = ""
    attribution: Attribution | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = self.usage.to_json()
        data["attribution"] = self.attribution.to_json() if self.attribution else None
        return data

    def cited_sources(self) -> list[Source]:
        """The sources the answer's [n] marks name, in order of first citation."""
        by_number = {source.number: source for source in self.sources}
        numbers = dict.fromkeys(n for n in cited_numbers(self.answer) if n in by_number)
        return [by_number[n] for n in numbers]

    @property
    def quotes(self) -> list[Evidence]:
        """The evidence to show under the answer; an extractive answer is made of quotes already."""
        if self.attribution is None or self.provider == EXTRACTIVE_MODEL:
            return []
        return self.attribution.evidence


@dataclass(frozen=True)
class Retrieved:
    sources: list[Source]
    standalone_question: str
    prompt_messages: list[dict[str, str]]
    low_relevance: bool = False


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Finished:
    result: AnswerResult


AnswerEvent = Retrieved | Token | Finished


@dataclass(frozen=True)
class Usage:
    """Tokens an answer cost over all its model calls; `estimated` when a provider gave none."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Usage:
        return cls(
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            bool(data.get("estimated", False)),
        )


@dataclass(frozen=True)
class Timings:
    """Seconds from the question to the passages, to the first word, and to the end."""

    retrieval_s: float = 0.0
    first_token_s: float = 0.0
    total_s: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timings:
        return cls(
            *(float(data.get(name, 0.0)) for name in ("retrieval_s", "first_token_s", "total_s"))
        )


@dataclass
class _UsageSum:
    """The Usage of the model calls so far, added to as each call reports (or is estimated)."""

    total: Usage = field(default_factory=Usage)

    def add(self, reported: dict[str, int] | None, estimate: Callable[[], tuple[int, int]]) -> None:
        inputs, outputs = (
            (reported["input_tokens"], reported["output_tokens"]) if reported else estimate()
        )
        self.total = Usage(
            self.total.input_tokens + inputs,
            self.total.output_tokens + outputs,
            self.total.estimated or not reported,
        )


@dataclass
class _Ending:
    """How the model's answer ended: at its length limit (OpenAI's and llama.cpp's "length")."""

    cut_short: bool = False


@dataclass
class _Clock:
    start: float = field(default_factory=time.perf_counter)
    retrieval_s: float = 0.0
    first_token_s: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def token(self) -> None:
        if self.first_token_s is None:
            self.first_token_s = self.elapsed()

    def timings(self) -> Timings:
        total = self.elapsed()
        first = total if self.first_token_s is None else self.first_token_s
        return Timings(self.retrieval_s, first, total)


def history_messages(history: Sequence[tuple[str, str]]) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for user, assistant in history:
        messages += [HumanMessage(user), AIMessage(assistant)]
    return messages


def count_message_tokens(choice: ChatModelChoice, messages: Sequence[BaseMessage]) -> int:
    """Exact after the chat template for the local model, estimated for the others."""
    counter = getattr(choice.chat_model, "count_prompt_tokens", None)
    if counter is not None:
        return counter(list(messages))
    return sum(choice.count_tokens(str(m.text)) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def truncate_hit(
    hit: SearchHit, budget: int, count_tokens: Callable[[str], int]
) -> SearchHit | None:
    """`hit` with its text cut (at a word) so its numbered block fits `budget`, or None."""
    text = hit.text
    while text:
        candidate = replace(hit, text=text + " …" if text != hit.text else text)
        cost = count_tokens(format_source(1, candidate))
        if cost <= budget:
            return candidate
        keep = max(int(len(text) * budget / cost) - 1, 0)
        text = text[:keep].rsplit(" ", 1)[0] if " " in text[:keep] else text[:keep]
    return None


def fit_hits(
    numbered: Sequence[tuple[int, SearchHit]], budget: int, count_tokens: Callable[[str], int]
) -> list[tuple[int, SearchHit]]:
    """The best-ranked passages whose numbered blocks fit `budget` tokens; lowest-ranked go first.

    When even the top passage alone is too long, it is truncated instead of answering from nothing.
    """
    kept: list[tuple[int, SearchHit]] = []
    used = 0
    for number, hit in numbered:
        cost = count_tokens(format_source(number, hit) + "\n\n")
        if used + cost > budget:
            break
        kept.append((number, hit))
        used += cost
    if not kept and numbered:
        number, hit = numbered[0]
        top = truncate_hit(hit, budget, count_tokens)
        kept = [(number, top)] if top else []
    return kept


def _clean_standalone(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return _CONDENSE_LABEL.sub("", lines[0]).strip().strip("\"'“”").strip()


def plausible_rewrite(rewrite: str, question: str, history: Sequence[tuple[str, str]]) -> bool:
    """Whether a condensed question looks like a rewrite of `question` and not something else.

    Guards against a small model's habits: echoing the previous question, copying the prompt's
    worked example, or answering instead of rewriting.
    """
    new = set(terms(rewrite))
    asked = set(terms(question))
    known = asked | set(terms(format_conversation(history)))
    return (
        bool(new)
        and (not asked or bool(new & asked))
        and len(new - known) <= 1
        and rewrite.casefold() != history[-1][0].strip().casefold()
    )


def _joined_question(question: str, history: Sequence[tuple[str, str]]) -> str:
    # Without a model to rewrite the follow-up, search with the previous question too: it usually
    # names the topic that "it"/"that"/"and the price?" refer to.
    return f"{history[-1][0]} {question}"


def warm_up(choice: ChatModelChoice) -> None:
    """Load the local model and evaluate the answer prompt's fixed start (the system prompt), so
    the first question waits only for its own passages. Remote models are left alone: a call there
    costs money and they keep no prompt state of ours."""
    if isinstance(choice.chat_model, LlamaCppChatModel):
        choice.chat_model.warm_up(
            ANSWER_PROMPT.format_messages(context="", question="", history=[])
        )


def _repeats(written: str) -> bool:
    """Whether the answer written so far has begun to say a sentence again."""
    return repeat_start(written) is not None


def _best_score(hits: Sequence[SearchHit]) -> float:
    return max((hit.score for hit in hits), default=0.0)


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


class AnswerPipeline:
    """Answers questions from the index; each step is a LangChain run under one root run."""

    def __init__(
        self,
        search: SearchFn,
        choice: ChatModelChoice,
        top_k: int,
        max_answer_tokens: int,
        low_relevance_threshold: float | None = None,
        evidence_tokens: int = 0,
        embed: EmbedFn | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.choice = choice
        self.secrets = list(secrets)
        self.max_answer_tokens = max_answer_tokens
        self.low_relevance_threshold = low_relevance_threshold
        self.evidence_tokens = evidence_tokens
        self.embed = embed
        self.retriever = IndexRetriever(search=search, k=top_k)

    def answer(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        config: RunnableConfig | None = None,
    ) -> AnswerResult:
        """The whole answer at once.

        The stream is drained to its end, not left at Finished: an abandoned stream closes the
        root run with GeneratorExit, which tracing records as an error.
        """
        results = [
            e.result for e in self.stream(question, history, config) if isinstance(e, Finished)
        ]
        if not results:
            raise RuntimeError("the answer stream ended without a result")
        return results[0]

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        config: RunnableConfig | None = None,
    ) -> Iterator[AnswerEvent]:
        """Retrieved, then Token events as the answer is written, then Finished.

        `history` is (user, assistant) turns, oldest first; only the last few are used. Iterate to
        the end so the root run closes normally.
        """
        config = ensure_config(config)
        run_id = config.get("run_id") or uuid.uuid4()
        turns = list(history)[-MAX_HISTORY_TURNS:]

        def run(inputs: dict[str, Any], config: RunnableConfig) -> Iterator[AnswerEvent]:
            yield from self._run(inputs["question"], inputs["history"], config, str(run_id))

        root = RunnableLambda(run, name="docqa_answer")
        yield from root.stream(
            {"question": question, "history": turns}, {**config, "run_id": run_id}
        )

    def _run(
        self,
        question: str,
        history: list[tuple[str, str]],
        config: RunnableConfig,
        run_id: str,
    ) -> Iterator[AnswerEvent]:
        clock = _Clock()
        usage = _UsageSum()
        standalone = self._condense(question, history, config, usage)
        started = time.perf_counter()
        if history and self._local_model:
            hits, standalone, low_relevance = self._search_follow_up(question, history, config)
        else:
            hits, standalone, low_relevance = self._search_rewritten(
                question, standalone, history, config
            )
        clock.retrieval_s = time.perf_counter() - started

        prompt_value = None
        # A local model answers a follow-up from the passages its search found and the follow-up
        # as asked, with the earlier question when the follow-up points back at it ("How can I
        # turn that off?"): with the whole conversation in its prompt it carried the previous
        # answer's claims over and read ~2 s longer, and given "And files with Fortran-style
        # specifications?" after "Is it suitable for large files?" it answered the earlier
        # question (README "Quality and speed").
        history_msgs = [] if self._local_model else history_messages(history)
        points_back = self._local_model and bool(_REFERS_BACK.search(question))
        earlier = earlier_question(history) if points_back else ""
        chat_model = self.choice.chat_model
        evidence: list[tuple[int, SearchHit]] = []
        if hits and chat_model is not None and not low_relevance:
            evidence = select_evidence(
                standalone, hits, self.evidence_tokens, self.choice.count_tokens
            )
            if self.choice.context_window > 0:
                evidence, history_msgs = self._fit(evidence, question, history_msgs, earlier)
            if evidence:
                prompt_value = ANSWER_PROMPT.invoke(
                    {
                        "context": format_context(evidence),
                        "earlier": earlier,
                        "question": question,
                        "history": history_msgs,
                    },
                    config,
                )
        sources = [Source.from_hit(number, hit) for number, hit in enumerate(hits, start=1)]
        messages = prompt_value.to_messages() if prompt_value else []
        yield Retrieved(sources, standalone, message_dicts(messages), low_relevance)

        # Canned messages are not checked against the passages; answers and quotes are.
        checked = True
        ending = _Ending()
        tokens: Iterator[str]
        if low_relevance:
            # Quoting or answering from weak matches would look like an answer; say so instead.
            checked, tokens = False, iter([LOW_RELEVANCE_ANSWER if hits else NO_HITS_ANSWER])
        elif chat_model is not None and prompt_value is None:
            checked, tokens = False, iter([NO_ROOM_ANSWER])
        elif chat_model is None:
            tokens = self._extractive_tokens(question, standalone, hits, config)
        else:
            tokens = self._model_tokens(chat_model, prompt_value, evidence, config, usage, ending)
        # A document may ask the model for its instructions or for keys; neither goes out.
        guard = LeakGuard(self.secrets, ANSWER_SYSTEM)
        parts: list[str] = []
        for text in guard.stream(tokens):
            clock.token()
            parts.append(text)
            yield Token(text)
        raw = "".join(parts)
        if guard.withheld:
            checked, raw = False, WITHHELD_ANSWER
        attribution = None
        if checked:
            # A sentence the length limit cut off says nothing yet: it is left out, and said so;
            # a sentence written again adds nothing and goes too, with all that follows it.
            shown = before_repeat(finished_part(raw) if ending.cut_short else raw)
            attribution = self._attribute(shown, hits, config)
            attribution = replace(attribution, cut_short=ending.cut_short)

        result = AnswerResult(
            answer=attribution.text if attribution else raw,
            sources=sources,
            question=question,
            standalone_question=standalone,
            prompt_messages=message_dicts(messages),
            provider=self.choice.provider,
            model=self.choice.model,
            usage=usage.total,
            timings=clock.timings(),
            run_id=run_id,
            low_relevance=low_relevance,
            raw_answer=raw,
            attribution=attribution,
        )
        yield Finished(result)

    def _search(self, query: str, config: RunnableConfig, k: int | None = None) -> list[SearchHit]:
        retriever = self.retriever if k is None else self.retriever.model_copy(update={"k": k})
        return [document_to_hit(d) for d in retriever.invoke(query, config)]

    @property
    def _local_model(self) -> bool:
        """Whether the answers come from the local (llama.cpp) model, whose follow-ups are
        searched by `_search_follow_up` and not rewritten first: on tests/fixtures/followups Qwen
        1.5B mostly echoed the follow-up or answered it, its rewrites found the right page in the
        top 5 for 0.72 against 0.80, and the rewrite cost ~4 s before the first word."""
        return isinstance(self.choice.chat_model, LlamaCppChatModel)

    def _search_follow_up(
        self, question: str, history: list[tuple[str, str]], config: RunnableConfig
    ) -> tuple[list[SearchHit], str, bool]:
        """A follow-up searched as asked and beside the previous question, the two fused: the
        search whose best passage matches better leads, the other counts half. "How can I turn
        that off from the Terminal?" finds its topic through the previous question, while a
        question on a new topic keeps its own results (recall@5 on the two follow-up sets 0.84
        and 0.88, on topic changes 0.88 and 0.94; the previous question beside it alone: 0.92,
        0.88, 0.73, 0.94; tests/fixtures/followups and followups-r, README).
        Returns the hits, the text that stands for the question, and whether they are weak."""
        threshold, k = self.low_relevance_threshold, self.retriever.k
        joined = _joined_question(question, history)
        # Both 20 deep: what both searches rank high comes up, not only each one's top few.
        own = self._search(question, config, max(k, FUSION_DEPTH))
        vague = is_low_relevance(own[:k], threshold, question)
        if vague and not _REFERS_BACK.search(question):
            # A new topic the documents do not hold: the previous question would match.
            return own[:k], question, True
        beside = self._search(joined, config, max(k, FUSION_DEPTH))
        if vague and is_low_relevance(beside[:k], threshold, joined):
            return beside[:k], joined, True
        # The conversation leads when the follow-up matches little alone ("When was it
        # written?") or matches the documents better beside the previous question ("How can I
        # turn that off from the Terminal?").
        if vague or _best_score(beside) > _best_score(own):
            weights = [FOLLOW_UP_CONTEXT_WEIGHT, 1.0]
        else:
            weights = [1.0, FOLLOW_UP_CONTEXT_WEIGHT]
        fused = reciprocal_rank_fusion([own, beside], limit=k, weights=weights)
        # Each hit keeps the cosine of the search that found it first, not its RRF score.
        hits = [replace(f.hit, score=next(s for s in f.scores if s is not None)) for f in fused]
        return hits, joined, False

    def _search_rewritten(
        self,
        question: str,
        standalone: str,
        history: list[tuple[str, str]],
        config: RunnableConfig,
    ) -> tuple[list[SearchHit], str, bool]:
        """The question as a remote model rewrote it (as asked without history; beside the
        previous question for extractive answers). A follow-up the rewrite left vague ("When
        was it written?") matches nothing alone, so it is searched again beside the previous
        question; one that names its own topic ("What is the boiling point of water?") is not
        retried: the previous question would match."""
        hits = self._search(standalone, config)
        low_relevance = is_low_relevance(hits, self.low_relevance_threshold, standalone)
        if low_relevance and history and _REFERS_BACK.search(question):
            joined = _joined_question(question, history)
            retried = self._search(joined, config) if joined != standalone else []
            if retried and not is_low_relevance(retried, self.low_relevance_threshold, joined):
                return retried, joined, False
        return hits, standalone, low_relevance

    def _attribute(self, answer: str, hits: list[SearchHit], config: RunnableConfig) -> Attribution:
        runnable = RunnableLambda(
            lambda text: attribute(text, hits, self.embed), name="attribute_sentences"
        )
        return runnable.invoke(answer, config)

    def _extractive_tokens(
        self, question: str, standalone: str, hits: list[SearchHit], config: RunnableConfig
    ) -> Iterator[str]:
        def extract(question: str) -> str:
            # Sentences are scored against the follow-up itself ("and the brakes?"): the joined
            # standalone question would favour the earlier topic, which already chose the hits.
            answer = extractive_answer(question, hits)
            return extractive_answer(standalone, hits) if answer == NO_ANSWER else answer

        runnable = RunnableLambda(extract, name="extractive_answer")
        yield from _words(runnable.invoke(question, config))

    def _model_tokens(
        self,
        chat_model: BaseChatModel,
        prompt_value: PromptValue,
        evidence: Sequence[tuple[int, SearchHit]],
        config: RunnableConfig,
        usage: _UsageSum,
        ending: _Ending,
    ) -> Iterator[str]:
        aggregate = None
        # Once the model writes a sentence again it has nothing new to say: it is stopped there
        # rather than left to recite to its length limit (the repeat is cut after). The local
        # model stops itself, a normal end for its trace, and is told what it answers from: a
        # logit bias over its own tokens. Any other model's stream is closed.
        local = isinstance(chat_model, LlamaCppChatModel)
        options = (
            {"evidence": "\n\n".join(hit.text for _, hit in evidence), "enough": _repeats}
            if local
            else {}
        )
        with closing(chat_model.stream(prompt_value, config, **options)) as stream:
            for chunk in stream:
                aggregate = chunk if aggregate is None else aggregate + chunk
                if text := str(chunk.text):
                    yield text
                    if not local and _repeats(str(aggregate.text)):
                        break
        answer = str(aggregate.text) if aggregate else ""
        metadata = getattr(aggregate, "response_metadata", None) or {}
        ending.cut_short = metadata.get("finish_reason") == "length"
        usage.add(
            getattr(aggregate, "usage_metadata", None),
            lambda: (
                count_message_tokens(self.choice, prompt_value.to_messages()),
                self.choice.count_tokens(answer),
            ),
        )
        if not answer.strip():
            yield EMPTY_ANSWER

    def _condense(
        self,
        question: str,
        history: list[tuple[str, str]],
        config: RunnableConfig,
        usage: _UsageSum,
    ) -> str:
        if not history or self._local_model:
            return question
        chat_model = self.choice.chat_model
        if chat_model is None:
            join = RunnableLambda(lambda q: _joined_question(q, history), name="condense_question")
            return join.invoke(question, config)
        inputs = {"conversation": format_conversation(history), "question": question}
        chain = (CONDENSE_PROMPT | chat_model.bind(max_tokens=CONDENSE_MAX_TOKENS)).with_config(
            run_name="condense_question"
        )
        message = chain.invoke(inputs, config)
        text = str(message.text)
        usage.add(
            getattr(message, "usage_metadata", None),
            lambda: (
                count_message_tokens(self.choice, CONDENSE_PROMPT.format_messages(**inputs)),
                self.choice.count_tokens(text),
            ),
        )
        standalone = _clean_standalone(text)
        if plausible_rewrite(standalone, question, history):
            return standalone
        return _joined_question(question, history)

    def _fit(
        self,
        evidence: list[tuple[int, SearchHit]],
        question: str,
        history: list[BaseMessage],
        earlier: str,
    ) -> tuple[list[tuple[int, SearchHit]], list[BaseMessage]]:
        """The evidence (and history) that fits the window beside the prompt and the answer."""
        while True:
            shell = ANSWER_PROMPT.format_messages(
                context="", question=question, history=history, earlier=earlier
            )
            budget = (
                self.choice.context_window
                - self.max_answer_tokens
                - count_message_tokens(self.choice, shell)
                - SAFETY_TOKENS
            )
            if budget >= MIN_CONTEXT_TOKENS or not history:
                break
            history = history[2:]
        return fit_hits(evidence, budget, self.choice.count_tokens), history

"""Small UI pieces shared by the pages: avatars, the source list, the upload report, the sidebar."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import streamlit as st

from app import preview
from app.preview import Passage
from app.text import attributed_markdown, counted, inert_markdown, snippet
from ingest.loaders import ACCEPTED_TYPES, SUPPORTED_SUFFIXES
from ingest.records import AddResult
from llm.answering.attribution import CUT_SHORT_NOTE, Attribution, Evidence
from llm.answering.chat_turns import AnswerTurn
from llm.answering.pipeline import Source
from llm.models.choice import PROVIDER_LABELS, available_providers
from llm.models.packaged import LOCAL_MODELS, local_model_installed, model_label
from llm.settings import DEFAULT_OPENAI_CHAT_MODEL, Settings

TRACES_PAGE = "app/traces.py"
# Material icons render the same everywhere; emoji depend on the reader's fonts.
USER_AVATAR = ":material/person:"
ASSISTANT_AVATAR = ":material/menu_book:"

UNAVAILABLE_REASONS = {
    "openai": "no OPENAI_API_KEY is set",
    "local": "llama-cpp-python or the local model's files are not installed; see the README",
    "extractive": "",
}


def model_controls(base: Settings) -> Settings:
    """Sidebar controls for provider, model, temperature, top-k; returns this session's settings."""
    providers = available_providers(base)
    if base.llm_provider not in (*providers, "auto"):
        st.warning(
            f"DOCQA_LLM_PROVIDER asks for {PROVIDER_LABELS[base.llm_provider]}, which is not "
            f"available here ({UNAVAILABLE_REASONS[base.llm_provider]}). Using "
            f"{PROVIDER_LABELS[providers[0]]} instead.",
            icon=":material/warning:",
        )
    provider = st.selectbox(
        "Answer with",
        providers,
        format_func=PROVIDER_LABELS.get,
        key="llm_provider",
    )
    model = base.llm_model
    local_model = base.local_model
    if provider == "openai":
        model = st.text_input(
            "Model", value=base.llm_model or DEFAULT_OPENAI_CHAT_MODEL, key="llm_model"
        )
    elif provider == "local":
        choices = installed_local_models(base.local_model)
        local_model = st.selectbox(
            "Local model",
            choices,
            index=choices.index(base.local_model) if base.local_model in choices else 0,
            format_func=model_label,
            key="local_model",
            help="Bigger models answer better and start writing later.",
        )
    temperature = st.slider(
        "Temperature",
        0.0,
        1.0,
        float(base.temperature),
        0.05,
        key="temperature",
        disabled=provider == "extractive",
    )
    top_k = st.slider("Passages to retrieve (top-k)", 1, 15, base.top_k, key="top_k")
    return base.model_copy(
        update={
            "llm_provider": provider,
            "llm_model": model,
            "local_model": local_model,
            "temperature": temperature,
            "top_k": top_k,
        }
    )


def installed_local_models(configured: str) -> list[str]:
    """The local models whose files are here, the configured one (a name or a path) included."""
    names = [name for name in LOCAL_MODELS if local_model_installed(name)]
    if configured not in names and local_model_installed(configured):
        names.append(configured)
    return names or [configured]


def source_list(sources: Sequence[Source], key: str) -> None:
    """An expander listing each numbered source: file, location, score, snippet, its page."""
    if not sources:
        return
    with st.expander(f"Sources ({len(sources)})"):
        for source in sources:
            st.markdown(
                f"**\\[{source.number}] {inert_markdown(source.source)}**, "
                f"{inert_markdown(source.where)} · similarity {source.score:.2f}"
            )
            st.caption(inert_markdown(snippet(source.text, 400)))
            if source.flag:
                st.caption(flag_note(source.flag))
            preview.page_button(
                f"Show {inert_markdown(source.where)}",
                Passage(source.doc_id, source.page, source.text),
                key=f"{key}_source{source.number}",
            )


def flag_note(reason: str) -> str:
    """Said beside a passage that reads as instructions to a model."""
    return (
        f":material/gpp_maybe: This passage reads like instructions to an AI model ({reason}); "
        "those sentences were not sent to the model."
    )


def evidence_quotes(evidence: Sequence[Evidence], sources: Sequence[Source], key: str) -> None:
    """The quotes the answer rests on, each with its file and location, shown without a click.

    The file and location open that page with the quote marked on it.
    """
    if not evidence:
        return
    doc_ids = {source.number: source.doc_id for source in sources}
    with st.container(border=True):
        st.caption(":material/format_quote: From your documents")
        for position, quote in enumerate(evidence):
            st.markdown(f"**\\[{quote.number}]** “{inert_markdown(quote.quote)}”")
            label = f"{quote.source}, {quote.where}"
            if (doc_id := doc_ids.get(quote.number)) is None:
                st.caption(inert_markdown(label))
                continue
            preview.page_button(
                inert_markdown(label),
                Passage(doc_id, quote.page, quote.quote),
                key=f"{key}_quote{position}",
            )


def answer_text(turn: AnswerTurn, key: str) -> None:
    """The checked answer: unsupported sentences greyed and said to be so, citations in place.

    When most of it is unsupported, the quotes come first and the page says so.
    """
    if turn.attribution is None or not turn.attribution.sentences:
        st.markdown(inert_markdown(turn.content))
        return
    sentences, unsupported = turn.attribution.sentences, turn.unsupported
    if turn.mostly_unsupported:
        st.warning(
            "Most of this answer was not found in your documents. Here is what they say:",
            icon=":material/report:",
        )
        evidence_quotes(turn.evidence, turn.sources, key)
        st.markdown(attributed_markdown(sentences))
        cut_short_note(turn.attribution)
        return
    st.markdown(attributed_markdown(sentences))
    cut_short_note(turn.attribution)
    if unsupported:
        st.caption(
            f":material/info: {counted(unsupported, 'sentence')} in grey "
            f"{'was' if unsupported == 1 else 'were'} not found in your documents."
        )
    if turn.evidence:
        evidence_quotes(turn.evidence, turn.sources, key)
    elif turn.cited:
        st.caption(
            ":material/link: "
            + " · ".join(
                f"\\[{c.number}] {inert_markdown(f'{c.source}, {c.where}')}" for c in turn.cited
            )
        )


def cut_short_note(attribution: Attribution) -> None:
    if attribution.cut_short:
        st.caption(f":material/content_cut: {CUT_SHORT_NOTE}")


def turn_key(turn: AnswerTurn) -> str:
    """A widget key prefix that stays the same for one answer across reruns."""
    return f"answer_{turn.entry_id or turn.trace_id or id(turn)}"


def answer_caption(provider: str, model: str, cached: bool) -> str:
    label = PROVIDER_LABELS.get(provider, provider).split(" (")[0]
    caption = label if model.casefold() == provider.casefold() else f"{label} · {model}"
    return caption + (" · cached answer" if cached else "")


def trace_links(trace_id: str, langsmith_url: str | None) -> None:
    """Links to an answer's entry on the Traces page (a shareable URL) and to its LangSmith run."""
    with st.container(horizontal=True):
        st.page_link(
            TRACES_PAGE,
            label="View trace",
            icon=":material/timeline:",
            query_params={"trace": trace_id},
        )
        if langsmith_url:
            st.page_link(langsmith_url, label="View in LangSmith", icon=":material/open_in_new:")


def document_uploader(settings: Settings, key: str) -> list[Any]:
    """The uploader; it is renewed (emptied) after each upload through a round counter."""
    round_key = f"{key}_round"
    st.session_state.setdefault(round_key, 0)
    return (
        st.file_uploader(
            f"Add {ACCEPTED_TYPES} files",
            type=[suffix.removeprefix(".") for suffix in SUPPORTED_SUFFIXES],
            accept_multiple_files=True,
            key=f"{key}_{st.session_state[round_key]}",
            help=f"Up to {settings.max_upload_mb} MB per file.",
            max_upload_size=settings.max_upload_mb,
        )
        or []
    )


def summary(results: Sequence[AddResult]) -> str:
    counts = {
        status: sum(r.status == status for r in results)
        for status in ("added", "duplicate", "failed")
    }
    parts = [f"{counts['added']} added"]
    if counts["duplicate"]:
        parts.append(f"{counts['duplicate']} already indexed")
    if counts["failed"]:
        parts.append(f"{counts['failed']} could not be read")
    return ", ".join(parts)


def upload_report(results: Sequence[AddResult], private: bool = False) -> None:
    """Per-file outcome: errors by name with the reason, duplicates noted. `private` (with
    accounts): a duplicate does not name the file it matched, which may be another user's."""
    for result in results:
        if result.status == "failed":
            st.error(
                f"**{inert_markdown(result.file)}** was not added. "
                f"It {inert_markdown(_sentence(result.error))}",
                icon=":material/error:",
            )
        elif result.status == "duplicate":
            reason = (
                "the same content is indexed already; your collection now holds it too."
                if private
                else _sentence(result.error)
            )
            st.info(
                f"**{inert_markdown(result.file)}** was not added again: {inert_markdown(reason)}",
                icon=":material/content_copy:",
            )
        elif result.flagged:
            st.warning(
                f"**{inert_markdown(result.file)}** was added, but {result.flagged} "
                f"passage{' reads' if result.flagged == 1 else 's read'} like instructions to an "
                "AI model. Such sentences are never passed to the model; the Admin page lists "
                "them.",
                icon=":material/gpp_maybe:",
            )


def _sentence(text: str | None) -> str:
    text = (text or "").strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def reading_note(sources: Sequence[Source]) -> str:
    """What the answer is being written from: each file once, with its pages or parts."""
    places: dict[str, list[Source]] = {}
    for source in sources:
        places.setdefault(source.source, []).append(source)
    if not places:
        return "Writing the answer…"
    read = "; ".join(f"{inert_markdown(name)} ({_parts(found)})" for name, found in places.items())
    return f"Reading {read} and writing the answer…"


def _parts(sources: list[Source]) -> str:
    """Plain pages as one sorted run ("pages 15 and 36"), then slides, sheets or OCR pages."""
    plain = [s.location is None and not s.ocr for s in sources]
    pages = sorted({s.page for s, is_plain in zip(sources, plain, strict=True) if is_plain})
    named = dict.fromkeys(
        s.where.replace(" (OCR)", ", OCR")
        for s, is_plain in zip(sources, plain, strict=True)
        if not is_plain
    )
    run = []
    if len(pages) > 1:
        run = [f"pages {', '.join(map(str, pages[:-1]))} and {pages[-1]}"]
    elif pages:
        run = [f"page {pages[0]}"]
    return ", ".join([*run, *named])


def text_only(
    events: Iterator[Any],
    token_type: type,
    sink: list[Any],
    on_first: Callable[[], Any] | None = None,
) -> Iterator[str]:
    """The text of token events for st.write_stream; every other event goes into `sink`."""
    for event in events:
        if isinstance(event, token_type):
            if on_first is not None:
                on_first()
                on_first = None
            yield event.text
        else:
            sink.append(event)

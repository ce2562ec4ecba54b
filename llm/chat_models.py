"""Choosing and building the chat model: OpenAI, the local SmolLM2, or none (extractive answers)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from llm.local_model import LOCAL_N_CTX, LlamaCppChatModel, local_model_available
from llm.settings import DEFAULT_OPENAI_CHAT_MODEL, LOCAL_CHAT_MODEL, Settings

EXTRACTIVE_MODEL = "extractive"

KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1": 1_047_576,
    "gpt-5-mini": 400_000,
    LOCAL_CHAT_MODEL: LOCAL_N_CTX,
}
# Unknown models (e.g. behind a custom base_url) get a window almost any chat model has.
FALLBACK_CONTEXT_WINDOW = 8192


@dataclass
class ChatModelChoice:
    """The provider in use; `chat_model` is None for extractive answers (window 0 = no limit)."""

    provider: str
    model: str
    chat_model: BaseChatModel | None
    context_window: int

    def count_tokens(self, text: str) -> int:
        """Exact for the local model, approximate for the others."""
        if isinstance(self.chat_model, LlamaCppChatModel):
            return self.chat_model.count_tokens(text)
        return approx_tokens(text)


def approx_tokens(text: str) -> int:
    """About four characters a token; tiktoken would need a download, so it is never used."""
    return math.ceil(len(text) / 4)


def resolve_provider(settings: Settings) -> str:
    """`auto` means openai with a key, else local when installed, else extractive."""
    if settings.llm_provider != "auto":
        return settings.llm_provider
    if settings.openai_configured:
        return "openai"
    if local_model_available():
        return "local"
    return "extractive"


def _window(settings: Settings, model: str) -> int:
    if settings.context_window > 0:
        return settings.context_window
    return KNOWN_CONTEXT_WINDOWS.get(model, FALLBACK_CONTEXT_WINDOW)


def build_chat_model(settings: Settings) -> ChatModelChoice:
    """The chat model for the resolved provider; raises with a plain reason when it cannot run."""
    provider = resolve_provider(settings)
    if provider == "openai":
        if not settings.openai_configured:
            raise ValueError("The OpenAI provider needs an API key: set OPENAI_API_KEY.")
        from langchain_openai import ChatOpenAI

        model = settings.llm_model or DEFAULT_OPENAI_CHAT_MODEL
        chat_model = ChatOpenAI(
            model=model,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            temperature=settings.temperature,
            max_tokens=settings.max_answer_tokens,
            stream_usage=True,
        )
        return ChatModelChoice(provider, model, chat_model, _window(settings, model))
    if provider == "local":
        # One GGUF ships with the app, so llm_model (an OpenAI model name) does not apply here.
        window = _window(settings, LOCAL_CHAT_MODEL)
        chat_model = LlamaCppChatModel(
            n_ctx=window,
            temperature=settings.temperature,
            max_tokens=settings.max_answer_tokens,
        )
        return ChatModelChoice(provider, LOCAL_CHAT_MODEL, chat_model, window)
    return ChatModelChoice(provider, EXTRACTIVE_MODEL, None, settings.context_window)


def extractive_choice() -> ChatModelChoice:
    """No model at all: answers quote the best sentences of the retrieved passages."""
    return ChatModelChoice("extractive", EXTRACTIVE_MODEL, None, 0)


def available_providers(settings: Settings) -> list[str]:
    """Providers that can answer here, the configured default first."""
    available = ["openai"] if settings.openai_configured else []
    if local_model_available():
        available.append("local")
    available.append("extractive")
    preferred = resolve_provider(settings)
    return sorted(available, key=lambda provider: provider != preferred)

"""Choosing and building the chat model: OpenAI, a local GGUF model, or none (extractive)."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from llm.models.amx import amx_model, cpu_has_amx
from llm.models.llama import LOCAL_N_CTX, LlamaCppChatModel
from llm.models.packaged import local_model_installed, model_label, resolve_model_file, spec_for
from llm.settings import DEFAULT_OPENAI_CHAT_MODEL, Settings

EXTRACTIVE_MODEL = "extractive"
# How each provider is named to users, on the pages and in notices.
PROVIDER_LABELS = {
    "openai": "OpenAI-compatible API",
    "local": "Local model (offline)",
    "extractive": "Extractive (no model, quotes passages)",
}

KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1": 1_047_576,
    "gpt-5-mini": 400_000,
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


def local_model_available(settings: Settings) -> bool:
    """True when llama-cpp-python and the configured local model's files are installed."""
    return importlib.util.find_spec("llama_cpp") is not None and local_model_installed(
        settings.local_model
    )


def resolve_provider(settings: Settings) -> str:
    """`auto` means openai with a key, else local when installed, else extractive."""
    if settings.llm_provider != "auto":
        return settings.llm_provider
    if settings.openai_configured:
        return "openai"
    if local_model_available(settings):
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
        # llm_model names an OpenAI model; the local one is its own setting.
        window = settings.context_window or LOCAL_N_CTX
        label = model_label(settings.local_model)
        path, extra_buffers = _local_model_file(settings)
        chat_model = LlamaCppChatModel(
            model_path=path,
            extra_buffers=extra_buffers,
            model_name=label,
            n_ctx=window,
            temperature=settings.temperature,
            max_tokens=settings.max_answer_tokens,
            evidence_bias=settings.evidence_bias,
        )
        return ChatModelChoice(provider, label, chat_model, window)
    return ChatModelChoice(provider, EXTRACTIVE_MODEL, None, settings.context_window)


def _local_model_file(settings: Settings) -> tuple[Path, bool]:
    """The GGUF file to load and whether with llama.cpp's extra buffers.
    On an AMX CPU whose llama.cpp build runs the AMX path, the packaged Qwen 1.5B is read from
    its Q8_0 copy: 200 against 134 prompt tokens/s on a 2-core Xeon (README)."""
    path = resolve_model_file(settings.local_model, settings.models_dir)
    if not cpu_has_amx():
        return path, True
    spec = spec_for(settings.local_model)
    fast = amx_model(path, settings.models_dir, requantize=spec is not None and spec.amx_copy)
    return (fast, True) if fast is not None else (path, False)


def extractive_choice() -> ChatModelChoice:
    """No model at all: answers quote the best sentences of the retrieved passages."""
    return ChatModelChoice("extractive", EXTRACTIVE_MODEL, None, 0)


def available_providers(settings: Settings) -> list[str]:
    """Providers that can answer here, the configured default first."""
    available = ["openai"] if settings.openai_configured else []
    if local_model_available(settings):
        available.append("local")
    available.append("extractive")
    preferred = resolve_provider(settings)
    return sorted(available, key=lambda provider: provider != preferred)

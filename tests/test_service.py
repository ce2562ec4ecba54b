"""The answering service that the chat page and `docqa ask` share: cache, limits, cap, records.

The paid provider is a scripted OpenAI-compatible server on 127.0.0.1 (tests/scripted_openai.py):
no real paid API is reachable here, and the app's OpenAI client, billing and records are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from llm.access.ratelimit import Limit, SharedBuckets, TokenBucket
from llm.answering.attribution import CUT_SHORT_NOTE
from llm.answering.pipeline import Token
from llm.components import build_index, build_ledger
from llm.models.choice import build_chat_model
from llm.records.tables import ledger_calls
from llm.records.trace_store import TRACES_FILE, TraceStore
from llm.retrieval.modes import make_search
from llm.service import (
    AnswerCache,
    Answered,
    AnswerService,
    Asker,
    Failed,
    Noticed,
    Refused,
    ServiceEvent,
)
from llm.settings import Settings, load_settings
from tests.cli_process import run_docqa
from tests.scripted_openai import Listener, scripted_model

ANSWER = "The P-40 pump moves 40 litres a minute [1]."


@pytest.fixture
def model_server() -> Iterator[Listener]:
    server = Listener(reply=scripted_model(ANSWER))
    yield server
    server.close()


def paid_settings(data_dir: Path, model_server: Listener, **more: object) -> Settings:
    return load_settings(
        data_dir=data_dir,
        llm_provider="openai",
        openai_api_key="sk-scripted-test-key",
        openai_base_url=f"{model_server.url}/v1",
        secrets_file=data_dir / "absent.toml",
        **more,
    )


def model_calls(server: Listener) -> int:
    return sum(path.endswith("/chat/completions") for path in server.paths)


def service_for(settings: Settings, index, **options: object) -> AnswerService:
    return AnswerService(
        settings,
        index,
        make_search(index, settings.search_mode),
        lambda: build_chat_model(settings),
        build_ledger(settings),
        TraceStore(settings.data_dir / TRACES_FILE),
        None,
        **options,
    )


def final(events: Iterator[ServiceEvent]) -> tuple[list[ServiceEvent], ServiceEvent]:
    seen = list(events)
    return seen, seen[-1]


def test_docqa_ask_is_billed_then_capped_without_a_provider_call(
    pump_dir: Path, model_server: Listener
) -> None:
    env = {
        "DOCQA_LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-scripted-test-key",
        "OPENAI_BASE_URL": f"{model_server.url}/v1",
        "DOCQA_CAP_DAILY_USD": "0.00002",
    }
    first = run_docqa("ask", "How fast is the P-40 pump?", "--json", data_dir=pump_dir, **env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["provider"] == "openai" and model_calls(model_server) == 1
    # What the command line spent is in the totals the Admin page shows.
    ledger = build_ledger(paid_settings(pump_dir, model_server, cap_daily_usd=0.00002))
    [day, *_] = ledger.usage()
    assert day.spent > 0 and day.exceeded

    capped = run_docqa("ask", "How fast is the P-40 pump?", "--json", data_dir=pump_dir, **env)
    assert capped.returncode == 0, capped.stderr
    answer = json.loads(capped.stdout)
    assert model_calls(model_server) == 1, "a capped ask must not call the provider"
    assert answer["provider"] == "extractive" and "40 litres" in answer["answer"]
    [notice] = answer["notices"]
    assert "spending cap" in notice["text"] and "is reached" in notice["text"]
    assert "spending cap" in capped.stderr
    text = run_docqa("ask", "How fast is the P-40 pump?", data_dir=pump_dir, **env)
    assert text.returncode == 0 and "spending cap" in text.stderr and "40 litres" in text.stdout
    records = TraceStore(pump_dir / TRACES_FILE).recent(owner="cli")
    assert [r.provider for r in records] == ["extractive", "extractive", "openai"]


def test_an_answer_cut_off_while_it_streams_is_billed_for_what_it_cost(
    pump_dir: Path, model_server: Listener
) -> None:
    settings = paid_settings(pump_dir, model_server)
    with closing(build_index(settings, owner="test")) as index:
        service = service_for(settings, index)
        events = service.ask("How fast is the P-40 pump?", [], Asker("a", "chat", "s1"))
        written = next(event for event in events if isinstance(event, Token))
        # Its reader stops midway: the stream is closed before the answer is kept.
        events.close()

        assert written.text and model_calls(model_server) == 1
        with service.ledger._engine.connect() as db:
            [call] = db.execute(sa.select(ledger_calls)).mappings().all()
        assert (call["provider"], call["estimated"]) == ("openai", True)
        assert call["input_tokens"] > 50 and call["output_tokens"] >= 1 and call["cost_usd"] > 0
        [day, *_] = service.ledger.usage()
        assert day.spent == call["cost_usd"]
        assert TraceStore(pump_dir / TRACES_FILE).recent(owner="a") == []


def test_first_questions_come_from_the_cache_and_make_their_own_record(
    pump_dir: Path, model_server: Listener
) -> None:
    settings = paid_settings(pump_dir, model_server)
    with closing(build_index(settings, owner="test")) as index:
        service = service_for(settings, index, cache=AnswerCache(ttl_s=60))
        _, first = final(service.ask("How fast is the P-40 pump?", [], Asker("a", "chat", "s1")))
        _, again = final(service.ask("How fast is the P-40 pump?", [], Asker("b", "chat", "s2")))
        assert isinstance(first, Answered) and isinstance(again, Answered)
        assert model_calls(model_server) == 1
        assert again.reply.cached and again.reply.trace_id == first.reply.trace_id
        assert again.reply.entry_id != first.reply.entry_id
        store = TraceStore(pump_dir / TRACES_FILE)
        assert store.get(again.reply.entry_id).owner == "b"
        # A follow-up is never served from the cache: the conversation changes its meaning (two
        # calls: the question is rewritten to stand alone, then answered).
        history = [("How fast is the P-40 pump?", ANSWER)]
        final(service.ask("How fast is the P-40 pump?", history, Asker("b", "chat", "s2")))
        assert model_calls(model_server) == 3


def test_an_answer_cut_at_the_token_limit_leaves_out_its_unfinished_sentence(
    pump_dir: Path,
) -> None:
    server = Listener(reply=scripted_model(f"{ANSWER} It also pumps", finish_reason="length"))
    settings = paid_settings(pump_dir, server)
    with closing(build_index(settings, owner="test")) as index:
        service = service_for(settings, index)
        _, answered = final(service.ask("How fast is the P-40 pump?", [], Asker("a", "chat", "s")))
        assert isinstance(answered, Answered)
        result = answered.reply.result
        assert result.raw_answer == f"{ANSWER} It also pumps"
        assert result.answer == ANSWER
        assert result.attribution is not None and result.attribution.cut_short
        kept = TraceStore(pump_dir / TRACES_FILE).get(answered.reply.entry_id)
        assert kept.attribution["cut_short"] is True
    try:
        env = {
            "DOCQA_LLM_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-scripted-test-key",
            "OPENAI_BASE_URL": f"{server.url}/v1",
        }
        printed = run_docqa("ask", "How fast does the P-40 pump water?", data_dir=pump_dir, **env)
        assert printed.returncode == 0, printed.stderr
        assert printed.stdout.startswith(f"{ANSWER}\n({CUT_SHORT_NOTE})\n")
    finally:
        server.close()


def test_a_refused_question_is_neither_answered_billed_nor_recorded(
    pump_dir: Path, model_server: Listener
) -> None:
    settings = paid_settings(pump_dir, model_server)
    with closing(build_index(settings, owner="test")) as index:
        shared = SharedBuckets()
        bucket = TokenBucket(1, 1)
        asker = Asker("a", "chat", "s1", limits=[Limit("this chat", bucket, bucket.new_state())])
        service = service_for(settings, index, limits=shared)
        _, answered = final(service.ask("How fast is the P-40 pump?", [], asker))
        seen, refused = final(service.ask("How much does the pump move?", [], asker))
        assert isinstance(answered, Answered) and isinstance(refused, Refused)
        assert seen == [refused] and refused.refusal.limit.name == "this chat"
        assert model_calls(model_server) == 1
        assert len(TraceStore(pump_dir / TRACES_FILE).recent(owner=None)) == 1


def test_a_model_that_cannot_load_or_fails_is_reported(pump_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=pump_dir,
        llm_provider="openai",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url="http://127.0.0.1:9/v1",
        secrets_file=tmp_path / "absent.toml",
    )
    with closing(build_index(settings, owner="test")) as index:
        failing = service_for(settings, index)
        _, failed = final(failing.ask("How fast is the P-40 pump?", [], Asker("a", "chat", "s")))
        assert isinstance(failed, Failed) and "sk-test" not in failed.reason

        def cannot_load():
            raise OSError("the model file is missing")

        service = AnswerService(
            settings,
            index,
            make_search(index, "hybrid"),
            cannot_load,
            build_ledger(settings),
            TraceStore(pump_dir / TRACES_FILE),
            None,
        )
        seen, done = final(service.ask("How fast is the P-40 pump?", [], Asker("a", "chat", "s")))
        [notice] = [event.notice for event in seen if isinstance(event, Noticed)]
        assert notice.kind == "error" and "the model file is missing" in notice.text
        assert isinstance(done, Answered) and done.reply.result.provider == "extractive"

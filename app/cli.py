"""The `docqa` command line: add, list, remove, search, ask, reindex, eval and users, no browser
needed."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.text import counted, evidence_line, snippet, terminal_safe
from ingest.catalog import Catalog
from ingest.embeddings import ModelFileError
from ingest.index import CATALOG_FILE, DocumentIndex, Progress, ReindexFailed, expand_paths
from ingest.loaders import ACCEPTED_TYPES
from ingest.ownership import DataDirBusy
from ingest.queue import QUEUE_FILE, IngestQueue, Job, QueuedFile, worker_running
from ingest.records import AddResult, SearchHit
from ingest.sqlite_file import SchemaTooNew
from llm.access.accounts import AccountError, Accounts
from llm.answering.attribution import CUT_SHORT_NOTE
from llm.answering.pipeline import Source, warm_up
from llm.answering.questions import clean_question, question_problem
from llm.components import (
    build_index,
    build_ledger,
    build_pipeline,
    build_trace_store,
    index_config,
)
from llm.evaluation.answer_eval import AnswerKey, AnswerReport, evaluate_answers, load_answer_keys
from llm.evaluation.retrieval_eval import (
    REPORTED_RECALLS,
    EvalReport,
    Question,
    evaluate,
    load_questions,
)
from llm.models.choice import ChatModelChoice, build_chat_model
from llm.models.packaged import LocalModelMissing
from llm.records.database import database_url, open_database
from llm.records.langsmith_tracing import build_tracing
from llm.records.trace_store import app_trace_url
from llm.retrieval.modes import SEARCH_MODES, SearchMode, make_search
from llm.service import Answered, AnswerService, Asker, Failed, Noticed, Reply, ServiceEvent
from llm.settings import Settings, load_settings

# The catalog file DocumentIndex keeps in the data dir; `list` reads it without taking the lock.
EXIT_FAILED = 1
EXIT_BUSY = 2
# How long `ask` waits for LangSmith (sending the runs, then the link's lookup) once answered.
TRACE_FLUSH_S = 10.0
TRACE_URL_WAIT_S = 5.0
# Answers asked on the command line are kept under this owner: only an admin sees them in the app.
CLI_OWNER = "cli"


class CommandError(Exception):
    """A mistake the user can fix (a missing path, an unknown id): shown as one line, exit 1."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(**_setting_overrides(args))
        return args.run(args, settings)
    except DataDirBusy as busy:
        _say(str(busy))
        return EXIT_BUSY
    except (
        CommandError,
        AccountError,
        ReindexFailed,
        ModelFileError,
        LocalModelMissing,
        SchemaTooNew,
    ) as error:
        _say(f"docqa: {error}")
        return EXIT_FAILED
    except SQLAlchemyError as error:
        # Not the error's text: it may carry the database's address and user.
        _say(
            f"docqa: the database of accounts cannot be opened ({type(error).__name__}): check "
            "DOCQA_DATABASE_URL and that its server is running"
        )
        return EXIT_FAILED
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        # A rule across fields (overlap below size) has no single field to name.
        where = f" {field}" if field else "s"
        _say(f"docqa: invalid setting{where}: {first['msg'].removeprefix('Value error, ')}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _say("docqa: interrupted")
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docqa",
        description="Index documents and ask questions about them. Settings come from DOCQA_* "
        "environment variables and .streamlit/secrets.toml (DOCQA_DATA_DIR picks the data folder).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    add = commands.add_parser(
        "add",
        help="add files, or the supported files in folders (queued for the app while it runs)",
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    _json_flag(add, "one JSON object per file, one per line")
    add.set_defaults(run=cmd_add)

    jobs = commands.add_parser("jobs", help="list indexing jobs, or one job's files")
    jobs.add_argument("job_id", nargs="?", type=int, metavar="JOB", help="a job's number")
    _json_flag(jobs, "a JSON list of jobs with their files")
    jobs.set_defaults(run=cmd_jobs)

    cancel = commands.add_parser("cancel", help="stop an indexing job after its current file")
    cancel.add_argument("job_id", type=int, metavar="JOB")
    cancel.set_defaults(run=cmd_cancel)

    listing = commands.add_parser("list", help="list the indexed documents")
    _json_flag(listing, "a JSON list")
    listing.set_defaults(run=cmd_list)

    remove = commands.add_parser("remove", help="remove a document by its id (see `docqa list`)")
    remove.add_argument("doc_id", metavar="DOC_ID")
    remove.set_defaults(run=cmd_remove)

    search = commands.add_parser("search", help="show the passages that best match a query")
    search.add_argument("query", metavar="QUERY")
    # dest is the setting's name, so the value gets the same checks as DOCQA_TOP_K.
    search.add_argument(
        "--k", dest="top_k", type=int, metavar="N", help="passages to show (default: top_k)"
    )
    _json_flag(search, "a JSON list")
    search.set_defaults(run=cmd_search)

    ask = commands.add_parser("ask", help="answer a question from the documents, citing sources")
    ask.add_argument("question", metavar="QUESTION")
    _json_flag(ask, "one JSON object once the answer is complete")
    ask.set_defaults(run=cmd_ask)

    reindex = commands.add_parser("reindex", help="rebuild the index, e.g. with new chunk sizes")
    reindex.add_argument("--chunk-size", type=int, metavar="N", help="characters per chunk")
    reindex.add_argument(
        "--chunk-overlap", type=int, metavar="N", help="characters shared by adjacent chunks"
    )
    _json_flag(reindex, "a JSON object")
    reindex.set_defaults(run=cmd_reindex)

    users = commands.add_parser("users", help="add, list, change or remove sign-in accounts")
    user_commands = users.add_subparsers(title="actions", required=True, metavar="ACTION")
    add_user = user_commands.add_parser(
        "add", help="make an account; the password is asked for (or read from stdin)"
    )
    add_user.add_argument("name", metavar="NAME")
    add_user.add_argument("--admin", action="store_true", help="may open the Admin page")
    add_user.set_defaults(run=cmd_users_add)
    list_users = user_commands.add_parser("list", help="list the accounts")
    list_users.set_defaults(run=cmd_users_list)
    password = user_commands.add_parser(
        "password", help="set an account's password (its sign-ins end)"
    )
    password.add_argument("name", metavar="NAME")
    password.set_defaults(run=cmd_users_password)
    remove_user = user_commands.add_parser("remove", help="delete an account")
    remove_user.add_argument("name", metavar="NAME")
    remove_user.set_defaults(run=cmd_users_remove)

    evaluation = commands.add_parser(
        "eval", help="score retrieval on a question set (DIR/docs and DIR/qa.jsonl)"
    )
    evaluation.add_argument("dir", type=Path, metavar="DIR")
    evaluation.add_argument(
        "--k", type=int, default=10, metavar="N", help="results per question (default 10)"
    )
    modes = evaluation.add_mutually_exclusive_group()
    # dest is the setting's name, so the default is the product's own (DOCQA_SEARCH_MODE).
    modes.add_argument(
        "--mode",
        dest="search_mode",
        choices=SEARCH_MODES,
        help="search mode to score (default: the search_mode setting)",
    )
    modes.add_argument(
        "--compare",
        nargs="?",
        const="",
        metavar="PROVIDER",
        help="retrieval: score every search mode side by side; with --answers: also answer with "
        "PROVIDER (default extractive) as the baseline, in the same run",
    )
    evaluation.add_argument(
        "--answers",
        action="store_true",
        help="score answers against DIR/answers.jsonl: correct, cited, supported, first-token time",
    )
    evaluation.add_argument(
        "--provider",
        dest="llm_provider",
        choices=("openai", "local", "extractive"),
        help="with --answers: the provider to score (default: the llm_provider setting)",
    )
    _json_flag(evaluation, "a JSON object with per-question results")
    evaluation.set_defaults(run=cmd_eval)
    return parser


# -- commands ----------------------------------------------------------------------------------


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        raise CommandError(f"no such file or folder: {', '.join(missing)}")
    paths = expand_paths(args.paths)
    if not paths:
        raise CommandError(f"no {ACCEPTED_TYPES} files found in the given folders")
    try:
        with _opened_index(settings) as index:
            results = index.add_paths(paths, on_progress=_progress_printer("adding"))
    except DataDirBusy:
        # The app owns the data dir: its worker indexes what is queued, so queue instead.
        if not worker_running(settings.data_dir):
            raise
        return _queue_for_the_app(paths, settings, args.json)
    if args.json:
        for result in results:
            _print_json(result.to_json())
    else:
        print("\n".join(_add_line(result) for result in results))
        print(_add_summary(results))
    return EXIT_FAILED if any(result.status == "failed" for result in results) else 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    # Like `list`, this only reads, so it works beside the app and creates nothing.
    found: list[Job] = []
    if (settings.data_dir / QUEUE_FILE).is_file():
        queue = IngestQueue(settings.data_dir)
        job = queue.job(args.job_id) if args.job_id is not None else None
        if args.job_id is not None and job is None:
            raise CommandError(f"no job {args.job_id} (`docqa jobs` lists them)")
        found = [job] if job is not None else queue.jobs()
        queue.close()
    elif args.job_id is not None:
        raise CommandError(f"no job {args.job_id}: nothing was ever queued here")
    if args.json:
        _print_json([_job_json(job) for job in found], indent=2)
    elif not found:
        print("No indexing jobs yet. `docqa add` queues one while the app owns the data folder.")
    elif args.job_id is not None:
        print(_job_line(found[0]))
        for file in found[0].files:
            print(f"  {_add_line(file.result()) if file.finished else _waiting_line(file)}")
    else:
        print("\n".join(_job_line(job) for job in found))
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    if not (settings.data_dir / QUEUE_FILE).is_file():
        raise CommandError(f"no job {args.job_id}: nothing was ever queued here")
    queue = IngestQueue(settings.data_dir)
    try:
        job = queue.job(args.job_id)
        if job is None:
            raise CommandError(f"no job {args.job_id} (`docqa jobs` lists them)")
        if not queue.request_cancel(job.id):
            raise CommandError(f"job {job.id} has already ended ({job.state})")
    finally:
        queue.close()
    print(f"Job {job.id} stops after its current file; the files indexed so far stay.")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    # Reading the catalog needs no lock (SQLite handles readers), so this works beside the app.
    path = settings.data_dir / CATALOG_FILE
    records = []
    if path.is_file():
        catalog = Catalog(path)
        records = catalog.documents()
        catalog.close()
    fields = ("doc_id", "source", "pages", "chunks", "sha256", "added_at")
    rows = [{name: getattr(record, name) for name in fields} for record in records]
    if args.json:
        _print_json(rows, indent=2)
    elif not rows:
        print("No documents indexed yet. Add some with: docqa add PATH...")
    else:
        for row in rows:
            print(
                f"{row['doc_id']}  {row['pages']:>4} p  {row['chunks']:>5} chunks  "
                f"{row['added_at']}  {row['source']}"
            )
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _opened_index(settings) as index:
        record = index.document(args.doc_id)
        if record is None:
            raise CommandError(f"no document with id {args.doc_id} (`docqa list` shows the ids)")
        index.remove(args.doc_id)
    print(f"Removed {record.source} ({record.doc_id}).")
    return 0


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    user = _accounts(settings).create(args.name, _new_password(), is_admin=args.admin)
    role = "an admin account" if user.is_admin else "an account"
    print(f"Added {role} for {user.name}. The app now asks everyone to sign in.")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    people = _accounts(settings).users()
    if not people:
        print("No accounts: the app is open to whoever reaches it. Add one: docqa users add NAME")
    for user in people:
        print(f"{user.name}{'  (admin)' if user.is_admin else ''}")
    return 0


def cmd_users_password(args: argparse.Namespace, settings: Settings) -> int:
    _accounts(settings).set_password(args.name, _new_password())
    print(f"New password set for {args.name}; its sign-ins have ended.")
    return 0


def cmd_users_remove(args: argparse.Namespace, settings: Settings) -> int:
    if not _accounts(settings).remove(args.name):
        raise CommandError(f"there is no account {args.name!r} (`docqa users list` shows them)")
    print(f"Removed the account {args.name}.")
    return 0


def _accounts(settings: Settings) -> Accounts:
    return Accounts(open_database(database_url(settings)), session_days=settings.session_days)


def _new_password() -> str:
    """A password typed twice at a terminal, or the first line of stdin (for scripts)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the two passwords differ")
    return first


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    with _opened_index(settings) as index:
        _require_documents(index)
        hits = make_search(index, settings.search_mode)(args.query, settings.top_k)
    if args.json:
        _print_json([hit.to_json() for hit in hits], indent=2)
        return 0
    for number, hit in enumerate(hits, start=1):
        print(f"[{number}] {terminal_safe(f'{hit.source}, {hit.where}')} (score {hit.score:.2f})")
        print(f"    {terminal_safe(snippet(hit.text, 160))}")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    question = clean_question(args.question)
    if problem := question_problem(question, settings.max_question_chars):
        raise CommandError(problem)
    tracing = build_tracing(settings)
    with _opened_index(settings) as index:
        _require_documents(index)
        service = AnswerService(
            settings,
            index,
            make_search(index, settings.search_mode),
            lambda: _chat_model(settings),
            build_ledger(settings),
            build_trace_store(settings),
            tracing,
            url_wait_s=TRACE_URL_WAIT_S,
            flush_s=TRACE_FLUSH_S,
        )
        _say("Searching your documents and writing the answer…")
        reply = _final_reply(
            service.ask(question, [], Asker(CLI_OWNER, "cli", f"cli-{uuid.uuid4()}"))
        )
    if tracing is not None and tracing.notice:
        _say(f"docqa: {tracing.notice}")
    result = reply.result
    trace_url = reply.langsmith_url or app_trace_url(settings.public_url, reply.trace_id)
    if args.json:
        _print_json(_answer_json(reply, trace_url), indent=2)
        return 0
    print(terminal_safe(result.answer.strip()))
    attribution = result.attribution
    if attribution and attribution.cut_short:
        print(f"({CUT_SHORT_NOTE})")
    if attribution and attribution.unsupported:
        print("\nNot found in your documents:")
        for sentence in attribution.sentences:
            if sentence.unsupported:
                print(f"  - {terminal_safe(snippet(sentence.text, 200))}")
    if result.quotes:
        print("\nEvidence:")
        for evidence in result.quotes:
            print(f"  {evidence_line(evidence)}")
    print("\nSources:")
    for source in result.sources:
        print(f"  [{source.number}] {terminal_safe(f'{source.source}, {source.where}')}")
    _say(f"({result.provider} · {result.model}) trace: {trace_url}")
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    config = index_config(settings)
    with _opened_index(settings) as index:
        done = index.reindex(config, on_progress=_progress_printer("reindexing"))
    summary = {
        "version": done.version,
        "documents": done.documents,
        "chunks": done.chunks,
        "chunk_size": config.chunk_size,
        "chunk_overlap": config.chunk_overlap,
        "elapsed_s": round(done.elapsed_s, 1),
    }
    if args.json:
        _print_json(summary, indent=2)
    else:
        print(
            f"Reindexed {counted(done.documents, 'document')} into {counted(done.chunks, 'chunk')} "
            f"(chunk size {config.chunk_size}, overlap {config.chunk_overlap}) "
            f"in {done.elapsed_s:.0f} s; index version {done.version}."
        )
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    docs, qa_file = args.dir / "docs", args.dir / "qa.jsonl"
    if not docs.is_dir() or not qa_file.is_file():
        raise CommandError(f"{args.dir} needs a docs/ folder and a qa.jsonl file")
    if args.k < max(REPORTED_RECALLS):
        raise CommandError(f"--k must be at least {max(REPORTED_RECALLS)}")
    if args.compare and not args.answers:
        raise CommandError("--compare PROVIDER goes with --answers; alone it takes no value")
    try:
        questions = load_questions(qa_file)
        keys = load_answer_keys(args.dir / "answers.jsonl") if args.answers else {}
    except FileNotFoundError:
        raise CommandError(f"--answers needs {args.dir / 'answers.jsonl'}") from None
    except ValueError as error:
        raise CommandError(str(error)) from None
    if not args.answers and any(question.history for question in questions):
        # A follow-up alone ("And with subfig?") is not a search anyone makes.
        raise CommandError(f"{qa_file} holds follow-up questions: score them with --answers")
    # A fresh embedded store, so the figures never depend on (or touch) the user's own index.
    with tempfile.TemporaryDirectory(prefix="docqa-eval-", ignore_cleanup_errors=True) as scratch:
        scratch_settings = settings.model_copy(
            update={"data_dir": Path(scratch), "chroma_url": None}
        )
        with _opened_index(scratch_settings) as index:
            figures = _index_eval_docs(index, expand_paths([docs]))
            if args.answers:
                baseline = (args.compare or "extractive") if args.compare is not None else None
                reports = _evaluate_answers(index, settings, questions, keys, baseline)
            else:
                modes = SEARCH_MODES if args.compare is not None else (settings.search_mode,)
                retrieval = {m: _evaluate_mode(index, m, questions, args.k) for m in modes}
    if args.answers:
        figures["answers"] = [report.to_json() for report in reports]
        if args.json:
            _print_json(figures, indent=2)
        else:
            _print_answer_reports(reports, figures)
        return 0
    if args.compare is not None:
        figures["modes"] = {mode: report.to_json() for mode, report in retrieval.items()}
    else:
        figures.update(mode=settings.search_mode, **retrieval[settings.search_mode].to_json())
    if args.json:
        _print_json(figures, indent=2)
    else:
        _print_reports(retrieval, figures)
    return 0


def _index_eval_docs(index: DocumentIndex, paths: Sequence[Path]) -> dict[str, Any]:
    started = time.monotonic()
    added = index.add_paths(paths, on_progress=_progress_printer("indexing"))
    ingest_s = time.monotonic() - started
    for result in added:
        if result.status == "failed":
            _say(f"docqa: {result.file} was not indexed: {result.error}")
    stats = index.stats()
    return {
        "documents": stats.documents,
        "chunks": stats.chunks,
        "embedding_model": stats.config.embedding_model,
        "chunk_size": stats.config.chunk_size,
        "chunk_overlap": stats.config.chunk_overlap,
        "relevance_threshold": stats.relevance_threshold,
        "ingest_s": round(ingest_s, 1),
    }


def _evaluate_answers(
    index: DocumentIndex,
    settings: Settings,
    questions: Sequence[Question],
    keys: dict[str, AnswerKey],
    baseline: str | None,
) -> list[AnswerReport]:
    """The configured provider's answers, then the baseline's, each judged against the keys."""
    providers = [settings]
    if baseline is not None:
        providers.append(settings.model_copy(update={"llm_provider": baseline}))
    search = make_search(index, settings.search_mode)
    reports = []
    for current in providers:
        try:
            choice = build_chat_model(current)
        except ValueError as error:
            raise CommandError(str(error)) from None
        pipeline = build_pipeline(
            current, search, choice, index.embed_texts, index.relevance_threshold
        )
        # Loading the model and evaluating the fixed system prompt are start-up costs, paid once
        # per process (the app pays them when it loads the model), not per question.
        warm_up(choice)
        _say(f"answering {len(keys)} questions with {choice.provider} · {choice.model}")
        reports.append(
            evaluate_answers(
                pipeline.answer,
                questions,
                keys,
                choice.provider,
                choice.model,
                on_answer=lambda o: _say(
                    f"  {o.question.id}: {'correct' if o.correct else 'wrong'}"
                    f"{', cites the gold page' if o.cites_gold else ''} ({o.total_s:.1f} s)"
                ),
            )
        )
    return reports


def _print_answer_reports(reports: Sequence[AnswerReport], figures: dict[str, Any]) -> None:
    """One row per provider, then each question's verdict under every provider."""
    print(
        f"Answers to {len(reports[0].outcomes)} questions over {figures['documents']} documents "
        f"({figures['chunks']} chunks)"
    )
    print(
        f"  {'provider · model':<40}{'correct':>8}{'cites':>7}{'gold page':>10}"
        f"{'unsupported':>12}{'first token p50/p95':>21}{'total p50/p95':>16}"
    )
    for r in reports:
        print(
            f"  {f'{r.provider} · {r.model}':<40}{r.correct:>8.2f}{r.cites_any:>7.2f}"
            f"{r.cites_gold:>10.2f}{r.unsupported_share:>11.0%} "
            f"{r.seconds('first_token_s', 50):>11.1f} / {r.seconds('first_token_s', 95):<5.1f} s"
            f"{r.seconds('total_s', 50):>7.1f} / {r.seconds('total_s', 95):<5.1f} s"
        )
    print("Per question (C = correct, G = cites a gold page, U = unsupported sentences):")
    for number, outcome in enumerate(reports[0].outcomes):
        marks = []
        for r in reports:
            o = r.outcomes[number]
            marks.append(
                f"{'C' if o.correct else '-'}{'G' if o.cites_gold else '-'}"
                f"{o.unsupported if o.unsupported else '-'}"
            )
        print(f"  {outcome.question.id:<6}" + "".join(f"{m:>6}" for m in marks))


def _evaluate_mode(
    index: DocumentIndex, mode: SearchMode, questions: Sequence[Question], k: int
) -> EvalReport:
    search = make_search(index, mode)
    # One unscored search first: one-off setup (loading the HNSW segment) is not search latency.
    search(questions[0].question, k)
    return evaluate(search, questions, k)


# -- helpers -----------------------------------------------------------------------------------


@contextmanager
def _opened_index(settings: Settings) -> Iterator[DocumentIndex]:
    """The index, closed (and the data dir lock released) however the command ends."""
    try:
        index = build_index(settings, owner=f"the docqa command line (pid {os.getpid()})")
    except ValueError as error:  # settings that cannot work, e.g. OpenAI embeddings without a key
        raise CommandError(str(error)) from None
    try:
        yield index
    finally:
        index.close()


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def _setting_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Options named after a setting (chunk_size, top_k, ...) override it for this run."""
    return {
        name: value
        for name, value in vars(args).items()
        if name in Settings.model_fields and value is not None
    }


def _require_documents(index: DocumentIndex) -> None:
    if index.is_empty:
        raise CommandError("no documents indexed yet; add some with: docqa add PATH...")


def _answer_json(reply: Reply, trace_url: str) -> dict[str, Any]:
    result = reply.result
    return {
        "answer": result.answer,
        "sources": [_source_json(source) for source in result.sources],
        "provider": result.provider,
        "model": result.model,
        "usage": result.usage.to_json(),
        "low_relevance": result.low_relevance,
        "attribution": result.attribution.to_json() if result.attribution else None,
        "trace_id": reply.trace_id,
        "trace_url": trace_url,
        "notices": [asdict(notice) for notice in reply.notices],
    }


def _chat_model(settings: Settings) -> ChatModelChoice:
    """The configured chat model; on the command line a model that cannot load is an error
    (the chat page answers by quoting instead)."""
    try:
        return build_chat_model(settings)
    except (ValueError, LocalModelMissing) as error:
        raise CommandError(str(error)) from None


def _final_reply(events: Iterator[ServiceEvent]) -> Reply:
    """Say the notices as they come; the answer, or an error when the model failed."""
    for event in events:
        if isinstance(event, Noticed):
            _say(f"docqa: {event.notice.text}")
        elif isinstance(event, Failed):
            raise CommandError(f"the model could not answer: {event.reason}")
        elif isinstance(event, Answered):
            return event.reply
    raise CommandError("the answer ended without a result")


def _source_json(source: Source) -> dict[str, Any]:
    """A cited source with the same fields as a search result."""
    fields = asdict(source)
    return {name: fields[name] for name in SearchHit.__dataclass_fields__}


def _progress_printer(verb: str) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        left = f", about {progress.eta_s:.0f} s left" if progress.eta_s else ""
        _say(
            f"{verb} {progress.files_done}/{progress.files_total}: {progress.current_file} "
            f"({progress.chunks_done} chunks, {progress.elapsed_s:.0f} s{left})"
        )

    return show


def _queue_for_the_app(paths: Sequence[Path], settings: Settings, as_json: bool) -> int:
    """Copy the files into the data dir's queue for the app's worker, and say so."""
    queue = IngestQueue(settings.data_dir)
    try:
        job_id = queue.enqueue_paths(paths, "cli", CLI_OWNER)
    finally:
        queue.close()
    if as_json:
        for path in paths:
            _print_json({"file": path.name, "status": "queued", "job": job_id})
        return 0
    print(
        f"Queued {counted(len(paths), 'file')} as job {job_id}: the app owns the data folder "
        f"{settings.data_dir}, so it indexes them in the background (copies are kept in the data "
        "folder until then). Every page of the app shows the progress; `docqa jobs "
        f"{job_id}` shows what became of each file, `docqa cancel {job_id}` stops the job after "
        "its current file."
    )
    return 0


def _job_line(job: Job) -> str:
    when = datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M")
    return (
        f"job {job.id:<4} {job.state:<9} {job.files_done}/{len(job.files)} files  "
        f"{counted(job.pages, 'page')}  {counted(job.chunks, 'chunk')}  {when}  "
        f"from {job.origin}"
    )


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "job": job.id,
        "state": job.state,
        "origin": job.origin,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "files": [asdict(file) for file in job.files],
    }


def _waiting_line(file: QueuedFile) -> str:
    return f"{file.state:<10} {file.name}"


def _add_line(result: AddResult) -> str:
    if result.status == "added":
        return (
            f"added      {result.file} ({counted(result.pages, 'page')}, "
            f"{counted(result.chunks, 'chunk')}, id {result.doc_id})"
        )
    return f"{result.status:<10} {result.file}: {result.error}"


def _add_summary(results: Sequence[AddResult]) -> str:
    counts = {
        status: sum(r.status == status for r in results)
        for status in ("added", "duplicate", "failed")
    }
    return (
        f"{counts['added']} added, {counts['duplicate']} already indexed, "
        f"{counts['failed']} could not be read."
    )


def _print_reports(reports: dict[str, EvalReport], figures: dict[str, Any]) -> None:
    """Figures per search mode in one table, then each question's rank under every mode."""
    first = next(iter(reports.values()))
    print(
        f"Retrieval on {len(first.results)} questions, {figures['documents']} documents, "
        f"{figures['chunks']} chunks ({figures['embedding_model']}, chunks "
        f"{figures['chunk_size']}/{figures['chunk_overlap']}, indexed in "
        f"{figures['ingest_s']:.0f} s)"
    )
    recalls = "".join(f"{f'recall@{n}':>10}" for n in REPORTED_RECALLS)
    print(f"  {'mode':<8}{recalls}{f'MRR@{first.k}':>9}{'search p50':>13}{'p95':>10}")
    for mode, report in reports.items():
        values = "".join(f"{report.recall_at(n):>10.3f}" for n in REPORTED_RECALLS)
        print(
            f"  {mode:<8}{values}{report.mrr:>9.3f}"
            f"{report.latency_ms(50):>10.1f} ms{report.latency_ms(95):>7.1f} ms"
        )
    print(f"Rank of the first right page per question (- = not in the top {first.k}):")
    print(f"  {'id':<6}" + "".join(f"{mode:>8}" for mode in reports) + "  question")
    for number, result in enumerate(first.results):
        ranks = [report.results[number].rank for report in reports.values()]
        line = f"  {result.question.id:<6}" + "".join(f"{rank or '-':>8}" for rank in ranks)
        line += f"  {result.question.question}"
        if len(reports) == 1 and result.rank is None and result.top:
            line += f"  (top result: {result.top.source}, page {result.top.page})"
        print(line)


def _print_json(value: Any, indent: int | None = None) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=indent))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())

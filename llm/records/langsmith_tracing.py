"""LangSmith tracing of answers: client, tracer config, run links, feedback, and health.

Nothing here may hold up an answer: the SDK sends runs from its own background thread, and every
request this module makes (the `/info` probe, the project lookup a run's web link needs, feedback)
runs on one daemon thread of ours. Failures are remembered as `problem` for the UI to mention.

Run links: LangSmith's web URL for a run is `{web}/o/{tenant_id}/projects/p/{project_id}/r/{run_id}`
and the SDK (`Client.get_run_url`, `RunTree.get_url`) asks the API for the tenant and project ids
each time; the SDK offers no URL form without them (public `/public/{token}/r` links need the run to
be shared first, another request). So the ids are looked up once per process in the background and
`run_url` builds the link locally from then on; until they are known it returns None and callers
show the in-app trace link instead.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from langchain_core.runnables import RunnableConfig
from langchain_core.tracers.langchain import LangChainTracer
from langsmith import Client
from langsmith import utils as ls_utils
from langsmith.anonymizer import DEFAULT_SECRET_RULES, create_anonymizer

from llm.settings import Settings

DEFAULT_API_URL = "https://api.smith.langchain.com"
FEEDBACK_KEY = "user_score"
REDACTED = "[redacted]"
# Connect and read timeouts (ms) for the client's requests; only background threads wait on them.
CLIENT_TIMEOUT_MS = (3_000, 10_000)
# A failed project lookup is tried again after this long; a project not created yet, sooner.
LOOKUP_RETRY_S = 60.0
PROJECT_PENDING_RETRY_S = 5.0
# Deep enough for chat messages nested in run inputs (`messages[][].kwargs.content`).
ANONYMIZER_DEPTH = 24

logger = logging.getLogger(__name__)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the app holds, as plain text, to be cut out of traced payloads."""
    secrets = (
        settings.openai_api_key,
        settings.langsmith_api_key,
        settings.admin_password,
        settings.database_url,
    )
    return [secret.get_secret_value() for secret in secrets if secret and secret.get_secret_value()]


def redactor(secrets: list[str]) -> Callable[[Any], Any]:
    """Replaces our own secrets, then anything shaped like a known API key, in every string.

    The SDK applies it to run inputs, outputs, metadata and errors before they leave the process.
    Exact values go first so a generic rule cannot mask half a secret and leave the rest.
    """
    exact = [{"pattern": re.compile(re.escape(value)), "replace": REDACTED} for value in secrets]
    return create_anonymizer([*exact, *DEFAULT_SECRET_RULES], max_depth=ANONYMIZER_DEPTH)


def describe_failure(error: BaseException) -> str:
    """A plain-English reason for a tracing failure, without the key or URL internals."""
    text = str(error)
    if isinstance(error, ls_utils.LangSmithAuthError) or re.search(r"\b40[13]\b", text):
        return "LangSmith rejected the API key"
    unreachable = (ls_utils.LangSmithConnectionError, requests.ConnectionError, requests.Timeout)
    if isinstance(error, unreachable) or "Connection" in text:
        return "LangSmith could not be reached"
    return "LangSmith returned an error"


class _Background:
    """One daemon thread running tasks in order; an exiting process never waits for it."""

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._tasks: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._on_error = on_error
        threading.Thread(target=self._loop, name="docqa-tracing", daemon=True).start()

    def submit(self, task: Callable[[], None]) -> threading.Event:
        done = threading.Event()
        self._tasks.put((task, done))
        return done

    def _loop(self) -> None:
        while True:
            task, done = self._tasks.get()
            try:
                task()
            except Exception as error:
                self._on_error(error)
            finally:
                done.set()


class Tracing:
    """LangSmith for one process: the client, the project, run links, feedback and health.

    Built from settings only (endpoint, key, project); the client gets every value explicitly.
    """

    def __init__(self, settings: Settings) -> None:
        self.project = settings.langsmith_project
        self.problem: str | None = None
        self._prefix: str | None = None
        self._project_id: str | None = None
        self._lookup: threading.Event | None = None
        self._next_lookup = 0.0
        self._lock = threading.Lock()
        self._feedback_ids: dict[str, uuid.UUID] = {}
        self._background = _Background(self._fail)
        self.client: Client | None = None
        try:
            self.client = self._build_client(settings)
        except Exception as error:  # e.g. conflicting LANGSMITH_* variables the SDK refuses
            self._fail(error)
            return
        self._background.submit(self._probe)

    @property
    def notice(self) -> str | None:
        """What to tell the user, once, when tracing is not working."""
        if self.problem is None:
            return None
        return f"Tracing is unavailable ({self.problem}); answers are not affected."

    def tracer(self) -> LangChainTracer | None:
        if self.client is None:
            return None
        return LangChainTracer(client=self.client, project_name=self.project)

    def run_url(self, run_id: str, wait_s: float = 0.0) -> str | None:
        """The run's LangSmith web link, or None while the ids it needs are not known yet.

        Starts the lookup when needed and waits for it at most `wait_s` seconds.
        """
        if self._prefix is None and (pending := self._start_lookup()) is not None and wait_s > 0:
            pending.wait(wait_s)
        return f"{self._prefix}{run_id}?poll=true" if self._prefix else None

    def send_feedback(
        self, run_id: str, score: int | None, comment: str | None, *, entry_id: str | None = None
    ) -> threading.Event:
        """Thumbs (1 up, 0 down, None cleared) and comment on a root run, sent in the background.

        The first call for `entry_id` (whoever gave it: the answer's own record, or a cache hit's
        record of the same run) creates the feedback, later ones (a changed mind, a comment)
        update it. Returns an event set once sent or failed; failures only set `problem`.
        """
        giver = entry_id or run_id

        def send() -> None:
            if self.client is None:
                return
            if self._prefix is None and time.monotonic() >= self._next_lookup:
                # The project id locates the run for LangSmith; without it the SDK still tries.
                with contextlib.suppress(Exception):
                    self._look_up()
            feedback_id = self._feedback_ids.get(giver)
            if feedback_id is not None:
                self.client.update_feedback(feedback_id, score=score, comment=comment)
            elif score is not None:
                created = self.client.create_feedback(
                    run_id,
                    key=FEEDBACK_KEY,
                    score=score,
                    comment=comment,
                    trace_id=run_id,
                    session_id=self._project_id,
                    feedback_id=uuid.uuid4(),
                )
                self._feedback_ids[giver] = created.id

        return self._background.submit(send)

    def flush(self, timeout_s: float) -> bool:
        """Wait for queued runs to be sent: at most `timeout_s`, and not once tracing failed.

        False when they were not all sent.
        """
        if self.client is None:
            return self.problem is None
        sender = threading.Thread(target=self.client.flush, daemon=True)
        sender.start()
        deadline = time.monotonic() + timeout_s
        while sender.is_alive() and self.problem is None and time.monotonic() < deadline:
            sender.join(0.05)
        return not sender.is_alive() and self.problem is None

    def _build_client(self, settings: Settings) -> Client:
        key = settings.langsmith_api_key.get_secret_value() if settings.langsmith_api_key else None
        return Client(
            api_url=settings.langsmith_endpoint or DEFAULT_API_URL,
            api_key=key,
            timeout_ms=CLIENT_TIMEOUT_MS,
            anonymizer=redactor(secret_values(settings)),
            tracing_error_callback=self._fail,
        )

    def _probe(self) -> None:
        if self.client is None:
            raise RuntimeError("tracing has no LangSmith client to probe")
        response = self.client.request_with_retries("GET", "/info")
        ls_utils.raise_for_status_with_text(response)

    def _start_lookup(self) -> threading.Event | None:
        with self._lock:
            if self.client is None or self._prefix is not None:
                return None
            if self._lookup is not None and not self._lookup.is_set():
                return self._lookup
            if time.monotonic() < self._next_lookup:
                return None
            self._lookup = self._background.submit(self._look_up)
            return self._lookup

    def _look_up(self) -> None:
        if self.client is None:
            raise RuntimeError("tracing has no LangSmith client to look the project up with")
        try:
            project = self.client.read_project(project_name=self.project)
        except ls_utils.LangSmithNotFoundError:
            # The project is created with its first run, which may still be on its way.
            self._next_lookup = time.monotonic() + PROJECT_PENDING_RETRY_S
            return
        except Exception:
            self._next_lookup = time.monotonic() + LOOKUP_RETRY_S
            raise
        host = ls_utils.get_host_url(None, self.client.api_url)
        self._project_id = str(project.id)
        self._prefix = f"{host}/o/{project.tenant_id}/projects/p/{project.id}/r/"

    def _fail(self, error: BaseException) -> None:
        if self.problem is None:
            logger.warning("LangSmith tracing is unavailable: %r", error)
        self.problem = describe_failure(error)


def build_tracing(settings: Settings) -> Tracing | None:
    """Tracing when LangSmith is configured (tracing on and a key), else None."""
    return Tracing(settings) if settings.langsmith_enabled else None


def answer_config(
    tracing: Tracing | None,
    *,
    page: str,
    session_id: str,
    provider: str,
    model: str,
    top_k: int,
    index_version: int,
) -> RunnableConfig:
    """The RunnableConfig of one answer: its tags and metadata, and the tracer when tracing.

    Runs under the root inherit the tags and metadata, so any step can be filtered on them.
    """
    config: RunnableConfig = {
        "tags": [page],
        "metadata": {
            "provider": provider,
            "model": model,
            "top_k": top_k,
            "index_version": index_version,
            # LangSmith groups runs sharing a `session_id` into one conversation thread.
            "session_id": session_id,
        },
    }
    tracer = tracing.tracer() if tracing is not None else None
    if tracer is not None:
        config["callbacks"] = [tracer]
    return config

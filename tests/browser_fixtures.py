"""Browser fixtures of the e2e and security suites: Debian's Chromium, real `streamlit run`s."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from llm.settings import DEFAULT_LOCAL_MODEL
from tests.debian_packages import ensure_debian_packages

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Debian's packages: Playwright's own browser download cannot work on a closed network. The emoji
# font is there so avatars and icons in the screenshots are not empty boxes.
BROWSER_PACKAGES = ["chromium", "chromium-driver", "fonts-noto-color-emoji"]
# Without the networking flags Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ADMIN_PASSWORD = "e2e-admin-password"
SCREENSHOTS_DIR = REPO_ROOT / "artifacts" / "screenshots"
# Settings the developer's shell may carry that would change what the app does under test.
UNSET = (
    "OPENAI_API_KEY",
    "DOCQA_OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "DOCQA_OPENAI_BASE_URL",
    "LANGSMITH_TRACING",
    "DOCQA_LANGSMITH_TRACING",
    "DOCQA_CHROMA_URL",
)


@dataclass
class Server:
    """A running `streamlit run streamlit_app.py` with its own data dir and log file."""

    url: str
    admin_password: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 120) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when it is absent (CI runs as root)."""
    ensure_debian_packages(BROWSER_PACKAGES, CHROMIUM.exists, "the browser tests")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = ensure_chromium()
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(server: Server, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"streamlit exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit was not healthy after {timeout_s:.0f} s:\n{server.log_tail()}")


def start_server(root: Path, env: dict[str, str]) -> Server:
    """`streamlit run` on a free port with the data dir under `root` (made when new) and these
    settings; a second server on the same `root` opens the data dir the first one left."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if key not in UNSET}
    environment.update(
        DOCQA_DATA_DIR=str(data_dir), DOCQA_ADMIN_PASSWORD=ADMIN_PASSWORD, HF_HUB_OFFLINE="1"
    )
    environment.update(env)
    log_path = root / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # Nothing to watch under test, and other edits to the tree must not rerun the app.
        "--server.fileWatcherType",
        "none",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", ADMIN_PASSWORD, data_dir, log_path, process)
    wait_healthy(server)
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The product's default offline set-up: the default local model, answers kept short."""
    server = start_server(
        tmp_path_factory.mktemp("chat_server"),
        {
            "DOCQA_LLM_PROVIDER": "local",
            "DOCQA_LOCAL_MODEL": DEFAULT_LOCAL_MODEL,
            "DOCQA_MAX_ANSWER_TOKENS": "128",
        },
    )
    yield server
    stop_server(server)


def two_a_minute(factory: pytest.TempPathFactory, limit: str) -> Iterator[Server]:
    """Extractive answers (instant) and a `limit` bucket (DOCQA_<limit>_CAPACITY, …) of two
    questions that refills once a minute."""
    server = start_server(
        factory.mktemp(limit.lower()),
        {
            "DOCQA_LLM_PROVIDER": "extractive",
            f"DOCQA_{limit}_CAPACITY": "2",
            f"DOCQA_{limit}_PER_MINUTE": "1",
        },
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two questions a minute per browser session."""
    yield from two_a_minute(tmp_path_factory, "RATE_LIMIT")


@pytest.fixture(scope="module")
def client_limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two questions a minute per client address, whatever its tabs and reloads."""
    yield from two_a_minute(tmp_path_factory, "CLIENT_RATE_LIMIT")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """On failure: a screenshot of every open page and the tail of each server's log."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name, value in funcargs.items():
            if isinstance(value, Server):
                report.sections.append((f"streamlit log ({name})", value.log_tail()))
            elif isinstance(value, Page) and not value.is_closed():
                SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
                path = SCREENSHOTS_DIR / f"FAILED-{item.name}-{name}.png"
                try:
                    value.screenshot(path=str(path), timeout=10_000)
                    report.sections.append(("screenshot", str(path)))
                except Exception as error:  # a broken page must not hide the real failure
                    report.sections.append(("screenshot", f"none: {error}"))
    return report

"""Server mode: the index over a real `chroma run` server, shared by two processes at once."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm.components import build_index
from llm.settings import load_settings

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    chroma = shutil.which("chroma") or pytest.fail("the `chroma` command (chromadb) is missing")
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    server = subprocess.Popen(
        [
            chroma,
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(
                        f"chroma run did not start: {(tmp_path / 'chroma.log').read_text()}"
                    )
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_two_processes_share_one_server(chroma_url: str, tmp_path: Path, good_pdfs: Path) -> None:
    data_dir = tmp_path / "data"
    index = build_index(load_settings(data_dir=data_dir, chroma_url=chroma_url), owner="test")
    try:
        [added] = index.add_paths([good_pdfs / "crazyones-pdfa.pdf"])
        assert added.status == "added"
        assert not (data_dir / "chroma").exists(), "server mode must not write an embedded store"

        # A second process on the same data dir is not refused in server mode, and sees the data.
        script = textwrap.dedent(
            f"""
            from pathlib import Path
            from llm.components import build_index
            from llm.settings import load_settings
            settings = load_settings(data_dir=Path({str(data_dir)!r}), chroma_url={chroma_url!r})
            index = build_index(settings, owner="second")
            print(index.search("misfits and rebels", 1)[0].source)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parents[1],
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "crazyones-pdfa.pdf"

        assert index.remove(added.doc_id)
        assert index.search("misfits and rebels", 3) == []
    finally:
        index.close()

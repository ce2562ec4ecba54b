"""Server mode: the index over a real `chroma run` server, shared by two processes at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm.components import build_index
from llm.settings import load_settings
from tests.servers import start_chroma

pytestmark = pytest.mark.server


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    yield from start_chroma(tmp_path)


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

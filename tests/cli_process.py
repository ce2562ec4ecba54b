"""Runs the `docqa` command line in its own process, as a user would, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_docqa(
    *args: str, data_dir: Path, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m app.cli ARGS` on DATA_DIR with extra env vars; output captured as text."""
    environment = {**os.environ, "DOCQA_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

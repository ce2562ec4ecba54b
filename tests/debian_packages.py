"""Debian packages the tests need (Chromium, Tesseract), installed with apt-get when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence

import pytest


def ensure_debian_packages(
    packages: Sequence[str], present: Callable[[], bool], purpose: str
) -> None:
    """Install `packages` with apt-get unless `present()` already holds (CI runs as root).

    Without apt-get or root the calling test is skipped, saying what to install."""
    if present():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(
            f"Debian's {' '.join(packages)} is missing and cannot be installed here (needs "
            f"apt-get as root): install it to run {purpose}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", *packages],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(
                f"`{' '.join(command)}` failed ({done.returncode}), so there is nothing for "
                f"{purpose}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
    if not present():
        pytest.fail(f"apt-get installed {list(packages)} but {purpose} still cannot use them")

"""Real servers for the tests and benchmarks: Debian's PostgreSQL (installed when missing, run as
the `postgres` user, which it insists on, in a fresh cluster under a temporary folder) and
Chroma's `chroma run`."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.debian_packages import ensure_debian_packages


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL will not run as root; CI runs as root, a developer usually does not.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_postgres() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new PostgreSQL cluster; stop and remove it afterwards.

    Its folder is made outside pytest's (which only root may enter), for the server's user."""
    ensure_debian_packages(
        ["postgresql"], lambda: _bin_dir() is not None, "the tests of the PostgreSQL database"
    )
    bin_dir = _bin_dir()
    assert bin_dir is not None
    folder = Path(tempfile.mkdtemp(prefix="docqa-postgres-"))
    cluster, sockets = folder / "cluster", folder / "sockets"
    cluster.mkdir()
    sockets.mkdir()
    if os.geteuid() == 0:
        for path in (folder, cluster, sockets):
            shutil.chown(path, "postgres", "postgres")
    initdb = subprocess.run(
        _as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster),
                "-A",
                "trust",
                "-U",
                "docqa",
                "-E",
                "UTF8",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if initdb.returncode != 0:
        pytest.fail(f"initdb failed: {initdb.stdout}{initdb.stderr}")
    port = _free_port()
    log = (folder / "postgres.log").open("w")
    server = subprocess.Popen(
        _as_server_user(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(cluster),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "fsync=off",
            ]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={port} user=docqa dbname=postgres"):
                    break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(
                        f"PostgreSQL did not start: {(folder / 'postgres.log').read_text()}"
                    )
                time.sleep(0.2)
        yield f"postgresql+psycopg://docqa@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """A new empty database on the server; its URL."""
    admin = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def start_chroma(folder: Path) -> Iterator[str]:
    """Yield the URL of a `chroma run` server storing under `folder`; stop it afterwards."""
    chroma = shutil.which("chroma") or pytest.fail("the `chroma` command (chromadb) is missing")
    port = _free_port()
    log_path = folder / "chroma.log"
    folder.mkdir(parents=True, exist_ok=True)
    command = [chroma, "run", "--path", str(folder / "server"), "--host", "127.0.0.1"]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
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
                    pytest.fail(f"chroma run did not start: {log_path.read_text()}")
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)

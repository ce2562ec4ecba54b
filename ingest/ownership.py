"""One owning process per embedded data dir: an OS lock the kernel frees when the owner dies."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

LOCK_NAME = ".owner.lock"

_held: dict[Path, DataDirLock] = {}
_held_guard = threading.Lock()


class DataDirBusy(RuntimeError):
    """Another process owns the data dir; the message says who and what to do."""


class DataDirLock:
    """An exclusive flock on DATA_DIR/.owner.lock, shared by everything in this process."""

    def __init__(self, path: Path, handle: int, owner: str):
        self.path = path
        self.owner = owner
        self._handle = handle

    @classmethod
    def acquire(cls, data_dir: Path, owner: str) -> DataDirLock:
        data_dir = data_dir.resolve()
        with _held_guard:
            if data_dir in _held:
                return _held[data_dir]
            path = data_dir / LOCK_NAME
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(handle)
                os.close(handle)
                raise DataDirBusy(_busy_message(data_dir, holder)) from None
            _write_holder(handle, owner)
            lock = cls(path, handle, owner)
            _held[data_dir] = lock
            return lock

    def release(self) -> None:
        with _held_guard:
            for key, lock in list(_held.items()):
                if lock is self:
                    del _held[key]
            os.ftruncate(self._handle, 0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)


def _write_holder(handle: int, owner: str) -> None:
    info = {"owner": owner, "pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(handle, 0)
    os.pwrite(handle, json.dumps(info).encode(), 0)


def _read_holder(handle: int) -> dict[str, str]:
    try:
        return json.loads(os.pread(handle, 4096, 0) or b"{}")
    except ValueError:
        return {}


def _busy_message(data_dir: Path, holder: dict[str, str]) -> str:
    who = holder.get("owner", "another DocQA process")
    pid = holder.get("pid", "?")
    since = holder.get("since", "?")
    return (
        f"The data folder {data_dir} is in use by {who} (pid {pid}, since {since}). "
        "An embedded Chroma store takes one process at a time, so this one will not touch it. "
        "Stop that process, or make the change from the app's Admin page, or run every process "
        "against one Chroma server (`chroma run --path DIR --port 8000`, then set "
        "DOCQA_CHROMA_URL=http://127.0.0.1:8000)."
    )

"""Intel AMX for the local model: whether this llama.cpp build runs its AMX path, and its copy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

# A child process answers, because a llama.cpp built with a GCC whose AMX intrinsics are wrong
# (llm/models/include/amxtileintrin.h) dies with a segmentation fault on the first prompt. It
# makes the copy AMX reads fastest (Q8_0, requantized from the shipped Q4_K_M: no finer weights
# than those, ~11 s once), then loads it with llama.cpp's extra buffers (AMX) and reads a prompt.
_CHECK = """
import ctypes, os, sys
import llama_cpp
source, copy = sys.argv[1], sys.argv[2]
if copy != source and not os.path.exists(copy):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = 2
    partial = copy + ".part"
    if llama_cpp.llama_model_quantize(source.encode(), partial.encode(), ctypes.byref(params)):
        sys.exit(3)
    os.replace(partial, copy)
llama = llama_cpp.Llama(model_path=copy, n_ctx=256, n_threads=2, verbose=False)
llama.eval(llama.tokenize(b"One prompt, read as an answer's prompt is read. " * 8))
"""
CHECK_TIMEOUT_S = 300
VERDICTS_FILE = "amx-checks.json"


def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU advertises Intel AMX; unknown (no /proc/cpuinfo) counts as yes: safe."""
    try:
        flags = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    return "amx_tile" in flags.split()


def amx_model(source: Path, models_dir: Path, requantize: bool) -> Path | None:
    """The model file to load with llama.cpp's AMX buffers (the Q8_0 copy with `requantize`),
    or None where its AMX path does not run. Checked once per llama.cpp build and model file;
    the verdict is kept in models_dir."""
    copy = models_dir / f"{source.stem}.q8_0.gguf" if requantize else source
    key = f"{_build_identity()}|{source.name}:{source.stat().st_size}|{copy.name}"
    verdicts_path = models_dir / VERDICTS_FILE
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(verdicts_path) + ".lock"):
        verdicts = _read(verdicts_path)
        # A copy deleted since it was checked is made (and checked) again.
        if key not in verdicts or (verdicts[key] and not copy.is_file()):
            verdicts[key] = _runs(source, copy)
            verdicts_path.write_text(json.dumps(verdicts, indent=1), encoding="utf-8")
    works = verdicts[key] and copy.is_file()
    return copy if works else None


def _runs(source: Path, copy: Path) -> bool:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHECK, str(source), str(copy)],
            capture_output=True,
            timeout=CHECK_TIMEOUT_S,
            check=False,
        )
        runs = done.returncode == 0
    except subprocess.TimeoutExpired:
        runs = False
    if not runs and copy != source:
        copy.unlink(missing_ok=True)
        copy.with_name(copy.name + ".part").unlink(missing_ok=True)
    return runs


def _build_identity() -> str:
    """Which compiled llama.cpp this is: a rebuild (with other flags) is checked again."""
    import llama_cpp

    library = Path(llama_cpp.__file__).parent / "lib"
    found = [p for p in sorted(library.glob("libggml-cpu*")) if p.is_file() and not p.is_symlink()]
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in found)


def _read(path: Path) -> dict[str, bool]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): bool(v) for k, v in data.items()} if isinstance(data, dict) else {}

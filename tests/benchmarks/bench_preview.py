"""Time to draw a page for the preview and mark a passage on it, per PDF, beside a baseline.

Run from the repository root: `python -m tests.benchmarks.bench_preview [--pages 40] [PDF ...]`.
Without paths it takes every PDF under tests/fixtures (the shared sample PDFs and the eval
manuals). For up to `--pages` pages spread over each file it times, with nothing cached:

- draw: the page rendered to WebP as the preview sends it (what a first look costs);
- mark: the page's first indexed passage placed on it (PDFium's text and char boxes);
- baseline: pypdf extracting the same page's text, the step ingestion already pays per page,
  so the ratio says what a preview costs against work the machine is known to do.

Figures are p50 and p95 in milliseconds per page; the target is a first render ≤ 1 s.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pypdf

from ingest.chunking import split_document
from ingest.loaders import load_document
from ingest.pages import pdf_page_count, pdf_passage_boxes, render_pdf_page

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def timed_ms(action: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    action(*args)
    return (time.perf_counter() - start) * 1000


def spread(count: int, wanted: int) -> list[int]:
    """Up to `wanted` 1-based page numbers spread evenly over `count` pages."""
    step = max(1, count / wanted)
    return sorted({int(i * step) + 1 for i in range(min(count, wanted))})


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def bench_file(path: Path, pages_wanted: int) -> dict[str, list[float]] | None:
    data = path.read_bytes()
    try:
        doc = load_document(path.name, data, len(data))
    except Exception as refused:  # a fixture the loader refuses (image-only, say) is skipped
        print(f"{path.name}: skipped ({refused})")
        return None
    first_passage = {}
    for chunk in split_document(doc, 1000, 150):
        first_passage.setdefault(chunk.metadata["page"], chunk.page_content)
    reader = pypdf.PdfReader(io.BytesIO(data))
    times: dict[str, list[float]] = {"draw": [], "mark": [], "baseline": []}
    for page in spread(pdf_page_count(data), pages_wanted):
        times["draw"].append(timed_ms(render_pdf_page, data, page))
        if page in first_passage:
            times["mark"].append(timed_ms(pdf_passage_boxes, data, page, first_passage[page]))
        times["baseline"].append(timed_ms(reader.pages[page - 1].extract_text))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--pages", type=int, default=40, help="pages timed per file")
    args = parser.parse_args()
    paths = args.paths or sorted(p for p in FIXTURES.rglob("*.pdf") if "bad" not in p.parts)
    header = f"{'file':32} {'pages':>5}  {'draw p50/p95':>14}  {'mark p50/p95':>13}"
    print(header + f"  {'pypdf p50/p95':>14}  draw÷pypdf")
    every_draw: list[float] = []
    for path in paths:
        times = bench_file(path, args.pages)
        if times is None:
            continue
        every_draw += times["draw"]
        draw, mark, base = (percentiles(times[k]) for k in ("draw", "mark", "baseline"))
        print(
            f"{path.name[:32]:32} {len(times['draw']):>5}  {draw[0]:6.0f} / {draw[1]:5.0f}  "
            f"{mark[0]:5.0f} / {mark[1]:5.0f}  {base[0]:6.0f} / {base[1]:5.0f}  "
            f"{draw[0] / max(base[0], 0.01):9.1f}×"
        )
    p50, p95 = percentiles(every_draw)
    print(
        f"all {len(every_draw)} pages: draw p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
        f"max {max(every_draw):.0f} ms"
    )


if __name__ == "__main__":
    main()

"""First-token time of a follow-up's answer, after its condensing call, with and without the
warmed-up system prompt put back (`LlamaCppChatModel._reuse_warm_start`).

Run from the repository root: `python -m tests.benchmarks.bench_followup [--rounds 6]
[--model qwen2.5-1.5b]`. Each round asks one follow-up: the condensing prompt, then the answer
prompt over ~500 tokens of a different manual page; rounds alternate between the two ways in one
process, so both see the same machine. The model is the packaged local model the app uses.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pypdf import PdfReader

from llm.answering.pipeline import warm_up
from llm.answering.prompts import ANSWER_PROMPT, CONDENSE_PROMPT, format_conversation
from llm.models.choice import ChatModelChoice
from llm.models.llama import LlamaCppChatModel
from llm.models.packaged import model_label, resolve_model_file
from llm.settings import DEFAULT_LOCAL_MODEL, Settings

MANUAL = Path(__file__).resolve().parents[1] / "fixtures" / "eval" / "docs" / "R-data.pdf"
HISTORY = [("How do I read fixed-width files?", "Use read.fwf with the field widths [1].")]


def evidence(page: int, model: LlamaCppChatModel, budget: int = 500) -> str:
    """About `budget` tokens of one manual page, as one numbered source."""
    words = (PdfReader(MANUAL).pages[page].extract_text() or "").split()
    while words and model.count_tokens(" ".join(words)) > budget:
        words = words[: int(len(words) * 0.9)]
    return "[1]\n" + " ".join(words)


def follow_up_first_token(model: LlamaCppChatModel, page: int, reuse: bool, warm: object) -> float:
    """Seconds from the answer prompt's start to its first streamed word, after a condense."""
    model._warm_state = warm if reuse else None
    condense = CONDENSE_PROMPT.format_messages(
        conversation=format_conversation(HISTORY), question="And for Fortran-style columns?"
    )
    model.bind(max_tokens=24).invoke(condense)
    answer = ANSWER_PROMPT.format_messages(
        context=evidence(page, model), question="How do I read Fortran-style columns?", history=[]
    )
    started = time.perf_counter()
    for _ in model.stream(answer):
        return time.perf_counter() - started
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--model", default=DEFAULT_LOCAL_MODEL)
    args = parser.parse_args()
    path = resolve_model_file(args.model, Settings().models_dir)
    model = LlamaCppChatModel(model_path=path, model_name=model_label(args.model), max_tokens=8)
    warm_up(ChatModelChoice("local", model.model_name, model, 0))
    warm = model._warm_state
    times: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(args.rounds):
        for reuse in (round_number % 2 == 0, round_number % 2 == 1):
            page = 12 + 2 * round_number + reuse
            times[reuse].append(follow_up_first_token(model, page, reuse, warm))
    without, with_reuse = statistics.median(times[False]), statistics.median(times[True])
    print(f"model {model.model_name}, {args.rounds} follow-ups each way")
    print(f"first token after condensing, system prompt re-read: p50 {without:.2f} s")
    print(f"first token after condensing, warm start put back:  p50 {with_reuse:.2f} s")
    print(f"ratio (put back / re-read): {with_reuse / without:.2f}")


if __name__ == "__main__":
    main()

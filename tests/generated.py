"""Documents made for the tests: distinct Markdown files of a chosen length, fast to index."""

from __future__ import annotations

from pathlib import Path


def notes(folder: Path, count: int, paragraphs: int) -> list[Path]:
    """`count` distinct Markdown files of about `paragraphs` chunks each."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number in range(count):
        path = folder / f"notes-{number}.md"
        path.write_text(
            "\n\n".join(
                f"Note {number}.{part}: valve {number} opens at step {part}. " * 20
                for part in range(paragraphs)
            ),
            encoding="utf-8",
        )
        made.append(path)
    return made

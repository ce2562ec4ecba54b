"""The offline default model end to end through `docqa ask`: a right answer, cited, with evidence.

The rest of the suite answers with the smallest model for speed; this is the one place the model a
new user gets is exercised, so a default that cannot load or cannot answer fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llm.models.packaged import model_label
from llm.settings import DEFAULT_LOCAL_MODEL
from tests.cli_process import run_docqa


@pytest.mark.slow
def test_the_default_model_answers_from_a_manual_and_shows_its_evidence(
    fixtures_dir: Path, data_dir: Path
) -> None:
    env = {"DOCQA_LOCAL_MODEL": DEFAULT_LOCAL_MODEL, "DOCQA_LLM_PROVIDER": "local"}
    added = run_docqa("add", str(fixtures_dir / "eval" / "docs" / "R-data.pdf"), data_dir=data_dir)
    assert added.returncode == 0, added.stderr

    asked = run_docqa("ask", "How do I read fixed-width format files?", data_dir=data_dir, **env)
    assert asked.returncode == 0, asked.stderr
    answer, _, rest = asked.stdout.partition("\n\n")
    assert "read.fwf" in answer and re.search(r"\[\d\]", answer)
    evidence = rest.partition("Evidence:\n")[2].partition("\n\nSources:")[0]
    assert re.search(r"“[^”]*read\.fwf[^”]*” \(R-data\.pdf, page 1[456]\)", evidence), rest
    assert model_label(DEFAULT_LOCAL_MODEL) in asked.stderr

    as_json = run_docqa(
        "ask", "How do I read fixed-width format files?", "--json", data_dir=data_dir, **env
    )
    checked = json.loads(as_json.stdout)["attribution"]
    assert checked["claims"] >= 1 and checked["unsupported"] <= checked["claims"] // 2

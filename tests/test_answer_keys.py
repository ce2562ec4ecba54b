"""Answer cache keys: the same question asked differently hits, anything that matters misses."""

from llm.records.cache_keys import answer_cache_key, normalize_question


def key(question: str = "What is R?", **changes) -> str:
    parts = {
        "index_id": "/data",
        "index_version": 3,
        "provider": "local",
        "model": "m",
        "temperature": 0.1,
        "top_k": 5,
    }
    return answer_cache_key(question, **{**parts, **changes})


def test_normalization_ignores_case_spacing_and_final_punctuation() -> None:
    assert normalize_question("  What   is R? ") == normalize_question("what is r")
    assert key("What is R?") == key("  what IS r ")


def test_every_input_of_the_answer_changes_the_key() -> None:
    base = key()
    for change in (
        {"index_id": "/other"},
        {"index_version": 4},
        {"provider": "openai"},
        {"model": "m2"},
        {"temperature": 0.2},
        {"top_k": 6},
    ):
        assert key(**change) != base, change
    assert key("What is S?") != base

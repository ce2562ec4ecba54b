"""Plain-text helpers shared by the command line and the pages (no Streamlit here)."""


def snippet(text: str, limit: int) -> str:
    """The text on one line, cut at a word boundary before `limit` characters, marked with …."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"

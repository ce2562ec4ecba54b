"""Records: the app's trace store, LangSmith tracing, and the keys of cached answers."""

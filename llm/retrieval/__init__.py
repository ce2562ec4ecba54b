"""Retrieval: search modes over the index, rank fusion, and the traced LangChain retriever."""

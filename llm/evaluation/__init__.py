"""Evaluation: retrieval and answer quality on a question set."""

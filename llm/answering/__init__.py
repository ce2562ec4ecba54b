"""Answering: the pipeline from question to checked, cited answer, and the conversation."""

"""Chat models: the provider choice, the in-process llama.cpp model and its packaged files."""

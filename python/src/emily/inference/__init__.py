"""Inference gateway: one OpenAI-compatible client over SGLang and llama.cpp."""

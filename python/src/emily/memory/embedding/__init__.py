"""Text embedders: the protocol (``base``), the offline local default (all-MiniLM-L6-v2 on ONNX
Runtime, ``onnx_minilm``), an OpenAI-compatible ``/v1/embeddings`` client (``openai_compat``)
and ``factory.create_embedder``, which picks one from the settings."""

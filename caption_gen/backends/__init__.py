"""Captioning backends behind one small interface (DESIGN.md §3).

A batch of :class:`~caption_gen.backends.base.GenerationRequest` (chat messages + an optional image
+ sampling params) → :class:`~caption_gen.backends.base.GenerationResult` (text, token count, finish
reason). Implementations: ``vllm`` (offline batched engine), ``openai`` (an OpenAI-compatible HTTP
endpoint), ``transformers`` (plain HF ``generate``, the reference path) and ``stub`` (deterministic
fixed captions for tests and the overhead benchmark). Build one with
:func:`caption_gen.backends.factory.build_backend` (cached per process).
"""

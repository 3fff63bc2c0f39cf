"""fsmt-serve: translation over HTTP with dynamic batching.

schema (the JSON in and out), service (limits, ids, decoding through the Translator), batcher (one
queue, one worker thread that owns the model), metrics (Prometheus text), edge (ASGI: counts and the
body cap), page (the try-it page), app (FastAPI routes), cli (``fsmt-serve``).
"""

"""``python -m fsmt_port.rerank``: the documented entry point; the code lives in ``fsmt_port.reranking.cli``."""

from fsmt_port.reranking.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m fsmt_port.serve``: the documented entry point; the code lives in ``fsmt_port.serving``."""

from fsmt_port.serving.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

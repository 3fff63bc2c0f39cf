"""``python -m fsmt_port.translate``: the documented entry point; the code lives in ``fsmt_port.translation.cli``."""

from fsmt_port.translation.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

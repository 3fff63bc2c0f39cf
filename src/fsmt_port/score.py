"""``python -m fsmt_port.score``: the documented entry point; the code lives in ``fsmt_port.scoring.cli``."""

from fsmt_port.scoring.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m fsmt_port.convert``: the documented entry point; the code lives in ``fsmt_port.fairseq.convert``."""

from fsmt_port.fairseq.convert import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m fsmt_port.export_ct2``: the documented entry point; the code lives in ``fsmt_port.export.ct2``."""

from fsmt_port.export.ct2 import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m fsmt_port.run_eval``: the documented entry point; the code lives in ``fsmt_port.evaluation.run_eval``."""

from fsmt_port.evaluation.run_eval import main

if __name__ == "__main__":
    raise SystemExit(main())

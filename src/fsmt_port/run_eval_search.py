"""``python -m fsmt_port.run_eval_search``: the documented entry point; the code lives in ``fsmt_port.evaluation.run_eval_search``."""

from fsmt_port.evaluation.run_eval_search import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m fsmt_port.model_card``: the documented entry point; the code lives in ``fsmt_port.evaluation.model_card``."""

from fsmt_port.evaluation.model_card import main

if __name__ == "__main__":
    raise SystemExit(main())

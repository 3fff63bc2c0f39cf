"""``--plot``: BLEU against each numeric searched argument, one panel per argument (PNG).

matplotlib is an optional dependency (``pip install 'fsmt_port[plot]'``); it is
checked before the search starts, not after it.
"""

from __future__ import annotations

from pathlib import Path

from fsmt_port.errors import ConfigError
from fsmt_port.files import atomic_file
from fsmt_port.evaluation.grid import FIELD_TYPES


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib, which is not installed; "
                          "run `pip install 'fsmt_port[plot]'` or drop --plot") from None


def numeric_arguments(names: list[str]) -> list[str]:
    return [n for n in names if FIELD_TYPES[n] in (int, float)]


def plot_bleu(rows: list[dict], names: list[str], path: str | Path, title: str = "",
              numeric: list[str] | None = None) -> Path | None:
    """Every combination as a dot, the best BLEU per value as a line; None when nothing is numeric.

    ``numeric``: the names to plot (default: the numeric generation arguments among ``names``).
    """
    from matplotlib.figure import Figure

    numeric = numeric_arguments(names) if numeric is None else numeric
    if not numeric:
        return None
    figure = Figure(figsize=(4.5 * len(numeric), 3.6))
    axes = figure.subplots(1, len(numeric), squeeze=False)[0]
    for ax, name in zip(axes, numeric):
        ax.scatter([r[name] for r in rows], [r["bleu"] for r in rows], alpha=0.5, label="each combination")
        values = sorted({r[name] for r in rows})
        if len(values) < len(rows):  # a grid; random-search values are all distinct: dots only
            ax.plot(values, [max(r["bleu"] for r in rows if r[name] == v) for v in values], marker="o",
                    label="best at this value")
        ax.set_xlabel(name)
        ax.set_ylabel("BLEU")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    if title:
        figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    with atomic_file(Path(path), mode="wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    return Path(path)

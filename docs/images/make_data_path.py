"""Draw `data_path.png`, the data path of a capsule (docs/concepts.md).

Run from the repository root: `python docs/images/make_data_path.py`.
"""

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

STEPS = [
    ("input", "tensor (B, ...)", "or (signals, dissimilarities)"),
    ("InputModule", "signals (B, K, C, *A)", "diss. (B, P, C)"),
    ("transformation", "signals (B, K, C, *A')", "diss. unchanged"),
    ("measuring", "signals (B, P, C, *A)", "d = (1-a) d_in + a d(v, w)"),
    ("routing", "signals (B, P, *A)", "diss. (B, P), over C"),
    ("competition", "signals (B, K, *A)", "diss. (B, K)"),
    ("final", "+ probabilities (B, K)", "e.g. flip, neg_softmax"),
    ("loss", "GLVQ, gKL, margin, ...", "on the probabilities"),
]


def main(path):
    figure = Figure(figsize=(11.5, 2.6))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, len(STEPS))
    axes.set_ylim(0, 1)
    axes.axis("off")
    for index, (name, first, second) in enumerate(STEPS):
        box = FancyBboxPatch(
            (index + 0.06, 0.22),
            0.88,
            0.56,
            boxstyle="round,pad=0.02",
            facecolor="#e8f0fe" if 0 < index < 7 else "#f1f3f4",
            edgecolor="#3c4043",
        )
        axes.add_patch(box)
        axes.text(index + 0.5, 0.66, name, ha="center", fontsize=10, weight="bold")
        axes.text(index + 0.5, 0.47, first, ha="center", fontsize=6.8)
        axes.text(index + 0.5, 0.34, second, ha="center", fontsize=6.8)
        if index:
            axes.annotate(
                "",
                xy=(index + 0.06, 0.5),
                xytext=(index - 0.08, 0.5),
                arrowprops={"arrowstyle": "->", "color": "#3c4043"},
            )
    axes.text(
        len(STEPS) / 2,
        0.06,
        "B batch, K capsules, P prototypes, C channels (the inputs routed to "
        "each capsule), A atom shape; the modules pass tuples (signals, "
        "dissimilarities).",
        ha="center",
        fontsize=8,
    )
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_path.png"))

"""PNG plots of results people would rather see than read."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")   # files only: no display on boards' hosts or CI
import matplotlib.pyplot as plt  # noqa: E402


def accuracy_curves(history_by_run: dict, path: str, title: str = "") -> None:
    """Held-out test accuracy per epoch, one line per run (e.g. fixed, float)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, history in history_by_run.items():
        ax.plot([r.epoch for r in history], [100 * r.test_accuracy for r in history], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Figures of a run folder: loss, learning rate and accuracy curves (PNG, matplotlib Agg)."""

from __future__ import annotations

import os

from frx import tracking


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], float(r[key])) for r in records if key in r]
    return [s for s, _ in pairs], [v for _, v in pairs]


def write_run_plots(workdir: str) -> list[str]:
    """Writes loss.png, lr.png and accuracy.png into `workdir`; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = tracking.read_metrics(workdir)
    if not records:
        raise FileNotFoundError(f"no {tracking.METRICS_FILE} with metrics in {workdir!r}; is it a run folder?")
    keys = sorted({k for r in records for k in r})
    figures = {
        "loss.png": ("loss", [k for k in keys if k == "train/loss" or (k.startswith("eval/") and k.endswith("/loss"))], "log"),
        "lr.png": ("learning rate", ["train/lr"], "linear"),
        "accuracy.png": ("top-1 accuracy", [k for k in keys if k.startswith("eval/") and k.endswith("/acc")], "linear"),
    }
    written = []
    for filename, (ylabel, series, yscale) in figures.items():
        series = [k for k in series if _series(records, k)[0]]
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        for key in series:
            steps, values = _series(records, key)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=key)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_yscale(yscale)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(f"{os.path.basename(os.path.normpath(workdir))}: {ylabel}")
        fig.tight_layout()
        path = os.path.join(workdir, filename)
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written

"""Figures of a run folder: loss, learning rate and accuracy curves (PNG, matplotlib Agg)."""

from __future__ import annotations

import math
import os

from frx import tracking


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], float(r[key])) for r in records if key in r]
    return [s for s, _ in pairs], [v for _, v in pairs]


def write_run_plots(workdir: str) -> list[str]:
    """Writes loss.png, lr.png and accuracy.png (zeroshot.png and retrieval.png for image-text runs)
    into `workdir`; returns the paths written."""
    plt = pyplot()
    records = tracking.read_metrics(workdir)
    if not records:
        raise FileNotFoundError(f"no {tracking.METRICS_FILE} with metrics in {workdir!r}; is it a run folder?")
    keys = sorted({k for r in records for k in r})
    figures = {
        "loss.png": ("loss", [k for k in keys if k == "train/loss" or (k.startswith("eval/") and k.endswith("/loss"))], "log"),
        "lr.png": ("learning rate", ["train/lr"], "linear"),
        "accuracy.png": ("top-1 accuracy", [k for k in keys if k.startswith("eval/") and k.endswith("/acc")], "linear"),
        # image-text runs (frx.tasks.contrastive): zero-shot and few-shot top-1, retrieval recall
        "zeroshot.png": ("top-1 accuracy", [k for k in keys if k.endswith("/zeroshot_top1")
                                            or (k.startswith("eval/fewshot/") and k.endswith("shot"))], "linear"),
        "retrieval.png": ("recall", [k for k in keys if k.startswith("eval/") and k.endswith(("_r1", "_r5"))], "linear"),
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


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed), imported on first use
    so that importing frx stays fast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_coord_check_plot(result: dict, path: str) -> str:
    """One panel per step t: mean |x| of every module output against width, log2-log2 (mup's layout)."""
    plt = pyplot()
    widths = result["widths"]
    modules = result["modules"]
    steps = len(next(iter(modules.values()))[str(widths[0])])
    legend_width = 2.1  # inches
    fig_width = 3.6 * steps + legend_width
    fig, axes = plt.subplots(1, steps, figsize=(fig_width, 3.8), dpi=110, squeeze=False)
    colours = [plt.cm.tab20(i % 20) for i in range(len(modules))]
    for t, ax in enumerate(axes[0]):
        for colour, (name, per_width) in zip(colours, modules.items()):
            values = [per_width[str(w)][t] for w in widths]
            if any(v > 0 for v in values):
                ax.plot(widths, [v if v > 0 else float("nan") for v in values], marker="o", markersize=3,
                        color=colour, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("width")
        ax.set_title(f"{result['param']}  t={t + 1}")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("mean |x|")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    right = 1 - legend_width / fig_width
    fig.tight_layout(rect=(0, 0, right, 1))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(right, 0.5), fontsize=7, frameon=False)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_sweep_plots(workdir: str, *, metric: str = "train_loss", x: str | None = None,
                      series: str | None = None, panels: str | None = None) -> tuple[list[str], str]:
    """The learning-rate transfer figure of a sweep folder (loss against lr, one curve per width, one
    panel per parametrization; TP5 Figure 1's layout) and `transfer.md`, the optimum per curve.
    A sweep over both the learning rate and the init scale (`mup.init_std_mult`) also gets the init
    scale's figure (`init_transfer.png`), each curve with the other field tuned, and the 2-D view
    (`lr_init_grid.png`, frx.sweep_grid) with the joint optimum of every width marked.
    Returns the paths written and the text of `transfer.md`."""
    from frx import sweep as sweep_lib
    from frx import sweep_grid

    sweep = sweep_lib.load_folder(workdir)
    x, default_series, default_panels = sweep_lib.default_axes(sweep, x)
    series, panels = series or default_series, panels or default_panels
    rows = sweep_lib.result_rows(sweep)
    other = sweep_grid.second_axis(sweep, x)
    axes = [x] if other is None else [x, other]
    written, parts = [], []
    for axis in axes:
        png = "init_transfer.png" if axis == sweep_grid.INIT_SCALE else "lr_transfer.png"
        tuned = [a for a in axes if a != axis]
        data = sweep_lib.curves(rows, x=axis, series=series, panels=panels, metric=metric,
                                best_over=tuned[0] if tuned else None)
        written.append(_draw_transfer(workdir, sweep, rows, data, x=axis, series=series, panels=panels, metric=metric,
                                      tuned=tuned[0] if tuned else None, png=png))
        heading = f"## {metric} against {axis}" + (f", {tuned[0]} tuned per point" if tuned else "") + "\n\n"
        parts.append((heading if other else "")
                     + sweep_lib.format_optima(data, x=axis, series=series, panels=panels, metric=metric) + "\n\n"
                     + sweep_lib.format_grid(data, x=axis, series=series, panels=panels, metric=metric))
    if other is not None:
        grid_data = sweep_grid.grids(rows, x=sweep_grid.LEARNING_RATE, y=sweep_grid.INIT_SCALE, series=series,
                                     panels=panels, metric=metric)
        kw = dict(x=sweep_grid.LEARNING_RATE, y=sweep_grid.INIT_SCALE, series=series, panels=panels, metric=metric)
        written.append(write_grid_plot(grid_data, os.path.join(workdir, "lr_init_grid.png"), **kw))
        parts.insert(0, "## Joint optimum (learning rate x init scale)\n\n" + sweep_grid.format_joint_optima(grid_data, **kw))
        parts.append(sweep_grid.format_grids(grid_data, **kw))
    md = os.path.join(workdir, "transfer.md")
    summary = "\n\n".join(parts)
    with open(md, "w") as f:
        f.write(summary)
    return [*written, md, *sweep_lib.write_tables(sweep)], summary


def _draw_transfer(workdir, sweep, rows, data, *, x, series, panels, metric, tuned, png) -> str:
    """Metric against `x`, one curve per series, one panel per panel value, each curve's optimum starred."""
    from frx import sweep as sweep_lib

    best = sweep_lib.optima(data, metric)
    plt = pyplot()
    names = list(dict.fromkeys(row.get(panels) for row in rows)) if panels else [None]  # the sweep's order
    names = [n for n in names if n in data]
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.2), dpi=120, squeeze=False, sharey=True)
    finite = [v for per in data.values() for pts in per.values() for _, v, _ in pts if math.isfinite(v)]
    for ax, panel in zip(axes[0], names):
        serie_names = sorted(data[panel], key=lambda s: (s is None, s))
        colours = plt.cm.viridis([i / max(len(serie_names) - 1, 1) for i in range(len(serie_names))])
        for colour, serie in zip(colours, serie_names):
            points = data[panel][serie]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, color=colour,
                    label=f"{series.split('.')[-1]} {serie}" if series else metric)
            if best[panel][serie] is not None:
                bx, by = best[panel][serie]
                ax.plot([bx], [by], marker="*", markersize=11, color=colour, markeredgecolor="black", zorder=5)
        xs = [p[0] for pts in data[panel].values() for p in pts]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in xs):
            ax.set_xscale("log", base=2)  # learning rates, widths: x2 grids
        ax.set_xlabel(x)
        ax.set_title(f"{panels} = {panel}" if panels else os.path.basename(os.path.normpath(workdir)))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    averaged = _others(sweep, rows, x, series, panels, tuned)
    label = metric + (f", best over {tuned.split('.')[-1]}" if tuned else "")
    axes[0][0].set_ylabel(f"{label} (mean over {averaged})" if averaged else label)
    if finite:  # near-diverged runs (far above the median) would squash the interesting part
        lo, median = min(finite), sorted(finite)[len(finite) // 2]
        hi = min(max(finite), lo + 5 * (median - lo))
        pad = (hi - lo) or 0.05 * abs(lo) or 1.0
        axes[0][0].set_ylim(lo - 0.05 * pad, hi + 0.05 * pad)
    fig.tight_layout()
    path = os.path.join(workdir, png)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_grid_plot(grid_data: dict, path: str, *, x: str, y: str, series: str | None, panels: str | None,
                    metric: str) -> str:
    """The 2-D view of a sweep over two fields (frx.sweep_grid): a heat map of the mean metric over
    (x, y) per series (a column each) and panel (a row each), the joint optimum starred; diverged
    points blank. Colours are shared by every map, clipped like the curves' y range."""
    import numpy as np

    from frx import sweep as sweep_lib
    from frx import sweep_grid

    plt = pyplot()
    best = sweep_grid.joint_optima(grid_data, metric)
    panel_names = list(grid_data)
    serie_names = sorted({s for per in grid_data.values() for s in per}, key=lambda s: (s is None, s))
    finite = [v for per in grid_data.values() for cells in per.values() for v in cells.values() if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if finite and not metric.endswith("acc"):
        hi = min(hi, lo + 5 * (sorted(finite)[len(finite) // 2] - lo)) or lo + 1.0
    fig, axes = plt.subplots(len(panel_names), len(serie_names), dpi=110, squeeze=False,
                             figsize=(3.4 * len(serie_names) + 1.2, 3.0 * len(panel_names)))
    image = None
    for i, panel in enumerate(panel_names):
        for j, serie in enumerate(serie_names):
            ax, cells = axes[i][j], grid_data[panel].get(serie, {})
            xs, ys = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
            values = np.array([[cells.get((xv, yv), float("nan")) for xv in xs] for yv in ys], np.float64)
            image = ax.imshow(values, origin="lower", cmap="viridis_r" if not metric.endswith("acc") else "viridis",
                              vmin=lo, vmax=hi, aspect="auto")
            ax.set_xticks(range(len(xs)), [sweep_lib._format(v) for v in xs], rotation=60, fontsize=6)
            ax.set_yticks(range(len(ys)), [sweep_lib._format(v) for v in ys], fontsize=6)
            found = best[panel].get(serie)
            if found is not None:
                ax.plot([xs.index(found[0])], [ys.index(found[1])], marker="*", markersize=13, color="white",
                        markeredgecolor="black")
            ax.set_title(", ".join(str(v) for v, name in ((panel, panels), (serie, series)) if name) or metric, fontsize=9)
            if i == len(panel_names) - 1:
                ax.set_xlabel(x, fontsize=8)
            if j == 0:
                ax.set_ylabel(y, fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02, label=metric)
    fig.savefig(path)
    plt.close(fig)
    return path


def _others(sweep, rows, *axes) -> str:
    """The varied fields that a point averages over (not those that move with the axes, e.g. heads
    varied together with the width)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(row.get(a) for a in axes if a), []).append(row)
    rest = [k.split(".")[-1] for k in sweep.varied if k not in axes
            and any(len({str(r.get(k)) for r in group}) > 1 for group in groups.values())]
    return ", ".join(rest)

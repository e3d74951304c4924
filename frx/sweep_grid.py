"""Two hyper-parameters swept together, e.g. the learning rate and the init scale (`optim.lr` x
`mup.init_std_mult`): the mean metric on the 2-D grid of each curve (width) and panel
(parametrization), its joint optimum, and what transferring the optimum of the first (base) width
costs at the others.

μP claims that both the learning rate eta and the init scale sigma tuned at the base width stay optimal
at every width (TP5 section 1, Figure 1 and Table 1: "init. variance" is μTransferable); a sweep over
both, one grid per width, shows it or not. Runs that have not finished are left out; a grid point
where any finished run diverged or failed is nan (drawn blank, never an optimum).
"""

from __future__ import annotations

import math

from frx import sweep as sweep_lib

INIT_SCALE = "mup.init_std_mult"
LEARNING_RATE = "optim.lr"


def second_axis(sweep: sweep_lib.Sweep, x: str) -> str | None:
    """The field that forms a 2-D grid with `x`: the init scale against the learning rate and back;
    None when the sweep does not vary both."""
    pair = {LEARNING_RATE: INIT_SCALE, INIT_SCALE: LEARNING_RATE}
    other = pair.get(x)
    return other if other in sweep.varied and x in sweep.varied else None


def grids(rows: list[dict], *, x: str, y: str, series: str | None, panels: str | None, metric: str) -> dict:
    """{panel: {series: {(x, y): mean metric over the other varied keys}}}."""
    out: dict = {}
    for (panel, serie, xv, yv), (mean, _) in sweep_lib.group_means(rows, (panels, series, x, y), metric).items():
        out.setdefault(panel, {}).setdefault(serie, {})[xv, yv] = mean
    return out


def joint_optima(grid_data: dict, metric: str) -> dict:
    """{panel: {series: (best x, best y, its mean metric)}}, None where every point diverged; the
    best is the lowest loss or the highest accuracy."""
    pick = max if metric.endswith("acc") else min
    out: dict = {}
    for panel, per_panel in grid_data.items():
        for serie, cells in per_panel.items():
            finite = [(v, xy) for xy, v in cells.items() if math.isfinite(v)]
            out.setdefault(panel, {})[serie] = (*pick(finite)[1], pick(finite)[0]) if finite else None
    return out


def _sorted_series(per_panel: dict) -> list:
    return sorted(per_panel, key=lambda s: (s is None, s))


def _steps(value, reference) -> float:
    """log2(value / reference): the shift in x2 grid steps."""
    ok = all(isinstance(v, (int, float)) and v > 0 for v in (value, reference))
    return math.log2(value / reference) if ok else float("nan")


def format_joint_optima(grid_data: dict, *, x: str, y: str, series: str | None, panels: str | None,
                        metric: str) -> str:
    """Markdown: per panel and series the joint optimum, its shifts in x2 grid steps from the first
    series' (the base width), and the metric there against the metric at the first series' optimum
    ("tuned at the first width, transferred" against "tuned here")."""
    best = joint_optima(grid_data, metric)
    lines = [f"| {panels or ''} | {series or ''} | best {x} | best {y} | {metric} at best | log2 shift {x} "
             f"| log2 shift {y} | {metric} with the first's optimum | transfer cost |",
             "|---|---|---|---|---|---|---|---|---|"]
    for panel, per_panel in best.items():
        ordered = _sorted_series(per_panel)
        first = per_panel[ordered[0]]
        for serie in ordered:
            found = per_panel[serie]
            if found is None:
                lines.append(f"| {panel} | {serie} | every run diverged or failed | | | | | | |")
                continue
            xv, yv, value = found
            transferred = grid_data[panel][serie].get(first[:2], float("nan")) if first else float("nan")
            shift_x = _steps(xv, first[0]) if first else float("nan")
            shift_y = _steps(yv, first[1]) if first else float("nan")
            lines.append(f"| {panel} | {serie} | {sweep_lib._format(xv)} | {sweep_lib._format(yv)} | {value:.4f} "
                         f"| {shift_x:+.1f} | {shift_y:+.1f} | {transferred:.4f} | {transferred - value:+.4f} |")
    return "\n".join(lines)


def format_grids(grid_data: dict, *, x: str, y: str, series: str | None, panels: str | None, metric: str) -> str:
    """Markdown tables of the mean metric, one per panel and series: a row per y, a column per x; the
    joint optimum in bold; "div." where a run diverged or failed."""
    best = joint_optima(grid_data, metric)
    out = []
    for panel, per_panel in grid_data.items():
        for serie in _sorted_series(per_panel):
            cells = per_panel[serie]
            xs, ys = sorted({k[0] for k in cells}), sorted({k[1] for k in cells})
            title = ", ".join(f"{name} = {value}" for name, value in ((panels, panel), (series, serie)) if name)
            out += [f"{title}: mean {metric}" if title else f"mean {metric}", "",
                    f"| {y} \\ {x} | " + " | ".join(sweep_lib._format(v) for v in xs) + " |", "|---|" + "---|" * len(xs)]
            for yv in ys:
                row = []
                for xv in xs:
                    v = cells.get((xv, yv))
                    text = "" if v is None else "div." if not math.isfinite(v) else f"{v:.3f}"
                    found = best[panel][serie]
                    row.append(f"**{text}**" if found and found[:2] == (xv, yv) else text)
                out.append(f"| {sweep_lib._format(yv)} | " + " | ".join(row) + " |")
            out.append("")
    return "\n".join(out)

"""Sweeps: a TOML file -> a list of runs of one preset, run locally as `frx train` processes.

    preset = "demo"
    workdir = "runs/my_sweep"          # the sweep folder: one run folder each under runs/
    parallel = 1                       # processes at once (also --parallel)

    [set]                              # every run: any config field, dotted or as nested tables
    total_steps = 300
    model.depth = 2

    [grid]                             # every combination of these lists
    "optim.lr" = [1e-3, 2e-3, 4e-3]
    seed = [0, 1]
    model = [{ width = 64, num_heads = 2 }, { width = 128, num_heads = 4 }]   # fields that go together

    [[grid]] ... [[grid]]              # or several grids: the union of their points (same keys in
                                       # each), e.g. a fine line through a coarse 2-D grid

    [random]                           # optional: `samples` draws, each crossed with the grid
    samples = 8
    seed = 0
    "optim.wd" = { log_uniform = [1e-5, 1e-3] }   # or uniform = [lo, hi], choice = [a, b, c]

Each run is `frx train PRESET --workdir SWEEP/runs/NAME --key value ...`, NAME built from the values
that vary (`lr=0.002,seed=1`). A sweep is resumable: a run with a `result.json` is done and skipped,
an interrupted one resumes from its own checkpoints. After every run the sweep folder gets
`results.csv` and `results.md` (one row per run); `frx plot SWEEP` draws them (frx.plots).
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tomllib

from frx import runs, tracking
from frx.config import ConfigError

SWEEP_FILE = "sweep.json"
RESULT_FILE = "result.json"
RESULT_COLUMNS = ("status", "steps", "train_loss", "val_loss", "val_acc")
DISTRIBUTIONS = ("log_uniform", "uniform", "choice")
TRAIN_LOSS_TAIL = runs.TRAIN_LOSS_TAIL


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    overrides: dict  # dotted field -> value, the varied ones and the [set] ones

    def train_overrides(self, workdir: str) -> list[str]:
        """The overrides of the preset for this run (`--workdir` in the sweep folder `workdir`, then
        `--key value ...`), as `frx.cli.parse_train_args(preset, ...)` takes them."""
        out = ["--workdir", os.path.join(workdir, "runs", self.name)]
        for key, value in self.overrides.items():
            out.append(f"--{key}")
            values = value if isinstance(value, (list, tuple)) else [value]
            out += [str(v) for v in values]
        return out

    def args(self, preset: str, workdir: str) -> list[str]:
        """The `frx` command-line arguments of this run: `train PRESET` and its overrides."""
        return ["train", preset, *self.train_overrides(workdir)]


@dataclasses.dataclass(frozen=True)
class Sweep:
    preset: str
    workdir: str
    runs: tuple[Run, ...]
    varied: tuple[str, ...]
    parallel: int = 1


def _flatten(table: dict, prefix: str = "") -> dict:
    """Nested TOML tables -> dotted keys; a one-key table naming a distribution is a leaf."""
    out = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not (len(value) == 1 and next(iter(value)) in DISTRIBUTIONS):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _merge(choices) -> dict:
    """One grid point: key -> value, where a table value sets several fields together."""
    point = {}
    for key, value in choices:
        point.update(_flatten(value, key + ".") if isinstance(value, dict) else {key: value})
    return point


def _draw(rng, key: str, spec) -> object:
    if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in DISTRIBUTIONS):
        raise ConfigError(f"[random] {key} must be {{log_uniform = [lo, hi]}}, {{uniform = [lo, hi]}} or {{choice = [...]}}")
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    lo, hi = args
    if kind == "log_uniform":
        if not 0 < lo < hi:
            raise ConfigError(f"[random] {key}: log_uniform needs 0 < lo < hi, got {args}")
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "+".join(_format(v) for v in value)
    return str(value)


def _run_names(points: list[dict], varied: list[str]) -> list[str]:
    """`lr=0.002,seed=1`: the last component of each varied key, or the whole key where two clash."""
    shorts = [k.split(".")[-1] for k in varied]
    labels = [k if shorts.count(s) > 1 else s for k, s in zip(varied, shorts)]
    names = []
    for point in points:
        name = ",".join(f"{label}={_format(point[k])}" for label, k in zip(labels, varied)) or "run"
        names.append(re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name))
    if len(set(names)) != len(names):
        raise ConfigError("two runs of the sweep would get the same folder name; make the varied values distinct")
    return names


def _grid_points(path: str, spec: dict | list) -> list[dict]:
    """The points of `[grid]` (every combination), or the union of several `[[grid]]` tables' points,
    duplicates dropped, in file order."""
    grids = [_flatten(table) for table in (spec if isinstance(spec, list) else [spec])]
    for grid in grids:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: [grid] {key} must be a non-empty list of values")
        if set(grid) != set(grids[0]):
            raise ConfigError(f"{path}: every [[grid]] must vary the same keys; {sorted(grids[0])} and "
                              f"{sorted(grid)} differ (give a one-element list where a key stays fixed)")
    points = [_merge(zip(grid, values)) for grid in grids for values in itertools.product(*grid.values())]
    unique = []
    for point in points:
        if point not in unique:
            unique.append(point)
    return unique


def load(path: str, *, workdir: str | None = None, parallel: int | None = None) -> Sweep:
    """Reads a sweep TOML file (see the module docstring)."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"sweep file {path!r} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    unknown = set(spec) - {"preset", "workdir", "parallel", "set", "grid", "random"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; use preset, workdir, parallel, [set], [grid], [random]")
    if "preset" not in spec:
        raise ConfigError(f"{path}: give the preset to sweep, e.g. preset = \"demo\"")
    fixed = _flatten(spec.get("set", {}))
    combos = _grid_points(path, spec.get("grid", {}))
    random = dict(spec.get("random", {}))
    samples, random_seed = int(random.pop("samples", 0)), int(random.pop("seed", 0))
    random = _flatten(random)
    if random and samples < 1:
        raise ConfigError(f"{path}: [random] needs samples = N (at least 1)")
    rng = np.random.default_rng(random_seed)
    draws = [{k: _draw(rng, k, v) for k, v in random.items()} for _ in range(samples)] if random else [{}]
    gridded = {k for combo in combos for k in combo}
    clash = (set(fixed) & gridded) | (set(fixed) & set(random)) | (gridded & set(random))
    if clash:
        raise ConfigError(f"{path}: {sorted(clash)} given in more than one of [set], [grid], [random]")
    points = [{**draw, **combo} for draw in draws for combo in combos]
    varied = list(random) + list(dict.fromkeys(k for combo in combos for k in combo))
    names = _run_names(points, varied)
    fixed.setdefault("log.progress", False)  # a progress bar in a log file is noise
    runs = tuple(Run(name, {**fixed, **point}) for name, point in zip(names, points))
    out = workdir or spec.get("workdir") or os.path.join("runs", os.path.splitext(os.path.basename(path))[0])
    return Sweep(spec["preset"], os.path.abspath(out), runs, tuple(varied), int(parallel or spec.get("parallel", 1)))


# --------------------------------------------------------------------------------------------------
# Results of one run


def summarize_run(run_dir: str, returncode: int | None = None) -> dict:
    """status (ok | diverged | failed | running) and the final metrics of a run folder (frx.runs, the
    run index, reads them the same way)."""
    summary = runs.summarize_metrics(tracking.read_metrics(run_dir))
    out = {"status": "diverged" if summary["diverged"] else "running", **{c: summary[c] for c in RESULT_COLUMNS[1:]}}
    if summary["diverged"]:
        return out
    if returncode is not None:
        out["status"] = "ok" if returncode == 0 else "failed"
    return out


def result_rows(sweep: Sweep) -> list[dict]:
    """One row per run: its varied values, then status and metrics (finished or as far as it got)."""
    rows = []
    for run in sweep.runs:
        run_dir = os.path.join(sweep.workdir, "runs", run.name)
        result_path = os.path.join(run_dir, RESULT_FILE)
        if os.path.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        elif os.path.isdir(run_dir):
            result = summarize_run(run_dir)
        else:
            result = {"status": "pending"}
        rows.append({"name": run.name, **{k: run.overrides[k] for k in sweep.varied},
                     **{c: result.get(c, "") for c in RESULT_COLUMNS}})
    return rows


def write_tables(sweep: Sweep) -> list[str]:
    """results.csv and results.md in the sweep folder."""
    rows = result_rows(sweep)
    columns = ["name", *sweep.varied, *RESULT_COLUMNS]
    csv_path = os.path.join(sweep.workdir, "results.csv")
    text = io.StringIO()
    writer = csv.DictWriter(text, columns)
    writer.writeheader()
    writer.writerows({k: _format(v) if not isinstance(v, str) else v for k, v in row.items()} for row in rows)
    tracking.write_text_atomic(csv_path, text.getvalue())
    md_path = os.path.join(sweep.workdir, "results.md")
    lines = ["| " + " | ".join(columns[1:]) + " |", "|" + "---|" * (len(columns) - 1)]
    for row in rows:
        cells = []
        for c in columns[1:]:
            v = row[c]
            cells.append(f"{v:.4f}" if isinstance(v, float) and c in RESULT_COLUMNS else _format(v) if not isinstance(v, str) else v)
        lines.append("| " + " | ".join(cells) + " |")
    tracking.write_text_atomic(md_path, "\n".join(lines) + "\n")
    return [csv_path, md_path]


# --------------------------------------------------------------------------------------------------
# Running


def save(sweep: Sweep) -> None:
    os.makedirs(sweep.workdir, exist_ok=True)
    tracking.write_json_atomic(os.path.join(sweep.workdir, SWEEP_FILE), {
        "preset": sweep.preset, "varied": list(sweep.varied), "parallel": sweep.parallel,
        "runs": [{"name": r.name, "overrides": r.overrides} for r in sweep.runs],
    })


def load_folder(workdir: str) -> Sweep:
    """The sweep written into `workdir` by `frx sweep`."""
    path = os.path.join(workdir, SWEEP_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; is {workdir!r} a sweep folder written by `frx sweep`?")
    with open(path) as f:
        data = json.load(f)
    runs = tuple(Run(r["name"], r["overrides"]) for r in data["runs"])
    return Sweep(data["preset"], os.path.abspath(workdir), runs, tuple(data["varied"]), data.get("parallel", 1))


def is_sweep_folder(workdir: str) -> bool:
    return os.path.exists(os.path.join(workdir, SWEEP_FILE))


def _execute(sweep: Sweep, run: Run, log) -> dict:
    # An attempt killed before its first checkpoint left metrics behind: `frx train` drops them itself.
    run_dir = os.path.join(sweep.workdir, "runs", run.name)
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "train.log"), "a") as out:
        proc = subprocess.run([sys.executable, "-m", "frx", *run.args(sweep.preset, sweep.workdir)],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    result = summarize_run(run_dir, proc.returncode)
    tracking.write_json_atomic(os.path.join(run_dir, RESULT_FILE), result)
    log(f"{run.name}: {result['status']} train_loss {result['train_loss']:.4f} val_acc {result['val_acc']:.4f}")
    return result


def run_sweep(sweep: Sweep, *, retry_failed: bool = False, log=print) -> None:
    """Runs every run that has no result yet (`parallel` at a time); the tables are written before
    the first run starts and after each one ends."""
    save(sweep)
    todo = []
    for run in sweep.runs:
        result_path = os.path.join(sweep.workdir, "runs", run.name, RESULT_FILE)
        if os.path.exists(result_path):
            with open(result_path) as f:
                if not (retry_failed and json.load(f)["status"] == "failed"):
                    continue
            os.remove(result_path)
        todo.append(run)
    log(f"sweep {sweep.workdir}: {len(sweep.runs)} runs, {len(sweep.runs) - len(todo)} done, "
        f"{len(todo)} to run, {sweep.parallel} at a time")
    write_tables(sweep)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(sweep.parallel, 1)) as pool:
        futures = [pool.submit(_execute, sweep, run, log) for run in todo]
        for future in concurrent.futures.as_completed(futures):
            future.result()
            write_tables(sweep)


# --------------------------------------------------------------------------------------------------
# Aggregation for the learning-rate transfer figure


def default_axes(sweep: Sweep, x: str | None = None) -> tuple[str, str | None, str | None]:
    """(x, series, panels): by default optim.lr against the metric, one curve per model.width, one
    panel per mup.param; a field given as x is never also the series or the panels."""
    varied = list(sweep.varied)
    x = x or ("optim.lr" if "optim.lr" in varied else (varied[0] if varied else None))
    if x is None:
        raise ConfigError("the sweep varies nothing; there is no curve to draw")
    series = "model.width" if "model.width" in varied and x != "model.width" else None
    panels = "mup.param" if "mup.param" in varied and x != "mup.param" else None
    return x, series, panels


def group_means(rows: list[dict], keys: tuple[str | None, ...], metric: str) -> dict:
    """{(value of each key, None for a None key): (mean metric, n runs)} over the finished runs; a group
    where any finished run diverged or failed has mean nan. Runs that have not finished are left out."""
    groups: dict = {}
    for row in rows:
        if row.get("status") in ("pending", "running"):
            continue
        value = row.get(metric)
        ok = row.get("status") == "ok" and isinstance(value, (int, float)) and math.isfinite(value)
        groups.setdefault(tuple(row.get(k) if k else None for k in keys), []).append(value if ok else float("nan"))
    return {key: (sum(values) / len(values), len(values)) for key, values in groups.items()}


def curves(rows: list[dict], *, x: str, series: str | None, panels: str | None, metric: str,
           best_over: str | None = None) -> dict:
    """{panel: {series: [(x, mean metric over the other varied keys, n runs)]}}, sorted by x.

    Runs that have not finished are left out; a point where any finished run diverged or failed
    has mean nan. With `best_over` (a second swept field, e.g. mup.init_std_mult against optim.lr)
    each point is the best of the means over that field's values: the curve with it tuned.
    """
    pick = max if metric.endswith("acc") else min
    tuned: dict = {}
    for (panel, serie, xv, _), (mean, n) in group_means(rows, (panels, series, x, best_over), metric).items():
        previous = tuned.get((panel, serie, xv))
        # a finite mean beats nan; among finite ones the best wins (the first on a tie)
        if previous is None or not math.isfinite(previous[0]) or (
                math.isfinite(mean) and pick(previous[0], mean) != previous[0]):
            tuned[(panel, serie, xv)] = (mean, n)
    out: dict = {}
    for (panel, serie, xv), (mean, n) in tuned.items():
        out.setdefault(panel, {}).setdefault(serie, []).append((xv, mean, n))
    for per_panel in out.values():
        for points in per_panel.values():
            points.sort(key=lambda p: p[0])
    return out


def optima(curve_data: dict, metric: str) -> dict:
    """{panel: {series: (best x, its mean metric)}} (None where every point diverged); the best is
    the highest accuracy or the lowest loss."""
    pick = max if metric.endswith("acc") else min
    out = {}
    for panel, per_panel in curve_data.items():
        for serie, points in per_panel.items():
            finite = [(v, xv) for xv, v, _ in points if math.isfinite(v)]
            out.setdefault(panel, {})[serie] = pick(finite)[::-1] if finite else None
    return out


def format_optima(curve_data: dict, *, x: str, series: str | None, panels: str | None, metric: str) -> str:
    """A markdown table: the best x per series and panel, its metric, and the spread of the optimum."""
    best = optima(curve_data, metric)
    lines = [f"| {panels or ''} | {series or ''} | best {x} | {metric} at best | log2 shift vs first |",
             "|---|---|---|---|---|"]
    for panel, per_panel in best.items():
        panel = "" if panel is None else panel
        first = None
        for serie, found in sorted(per_panel.items(), key=lambda kv: (kv[0] is None, kv[0])):
            if found is None:
                lines.append(f"| {panel} | {serie} | every run diverged or failed | | |")
                continue
            xv, value = found
            first = xv if first is None else first
            shift = math.log2(xv / first) if isinstance(xv, (int, float)) and first else float("nan")
            lines.append(f"| {panel} | {serie} | {_format(xv)} | {value:.4f} | {shift:+.1f} |")
    return "\n".join(lines)


def format_grid(curve_data: dict, *, x: str, series: str | None, panels: str | None, metric: str) -> str:
    """Markdown tables of the mean metric, one per panel: a row per series, a column per x; the best
    x of each row in bold; "div." where a run diverged or failed."""
    out = []
    for panel, per_panel in curve_data.items():
        xs = sorted({p[0] for points in per_panel.values() for p in points})
        title = f"{panels} = {panel}: " if panels else ""
        out += [f"{title}mean {metric}", "", f"| {series or ''} \\ {x} | " + " | ".join(_format(v) for v in xs) + " |",
                "|---|" + "---|" * len(xs)]
        best = optima({panel: per_panel}, metric)[panel]
        for serie in sorted(per_panel, key=lambda s: (s is None, s)):
            values = {p[0]: p[1] for p in per_panel[serie]}
            cells = []
            for xv in xs:
                v = values.get(xv)
                text = "" if v is None else "div." if not math.isfinite(v) else f"{v:.3f}"
                cells.append(f"**{text}**" if best[serie] and best[serie][0] == xv else text)
            out.append(f"| {serie} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)

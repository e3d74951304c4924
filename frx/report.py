"""`frx report RUN`: one self-contained HTML page about a run folder, to read or send as it is.

Sections: summary (status, step, final metrics, from the run index), curves (frx.plots' figures),
evaluations (every eval/* metric at every evaluation), faults and skips (non-finite steps, skipped and
converted records, the error a failed run stopped with), an augmentation preview of the training
pipeline (frx.data.preview; left out with the reason when the data cannot be read here), the
configuration, system info (run_info.json) and checkpoints. Figures are PNGs embedded as base64;
the page loads nothing and runs no script.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import tempfile

from frx import runs, tracking
from frx.config import TrainConfig, from_dict

FAULT_PREFIXES = ("train/nonfinite_steps", "data/skipped", "data/converted")
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: .5em; vertical-align: top; } img { max-width: 100%; border: 1px solid #eee; }
.curves figure { width: 31%; } img.pixels { image-rendering: pixelated; }
.note { color: #666; } .bad { color: #b00; font-weight: 600; } .ok { color: #070; }
"""


def _png_base64(path_or_bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return base64.b64encode(data).decode("ascii")


def _figure(png: bytes | str, caption: str, css_class: str = "") -> str:
    return (f'<figure><img class="{css_class}" alt="{html.escape(caption)}" src="data:image/png;base64,{_png_base64(png)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _cell(value) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.6g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _flatten(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", json.dumps(value) if isinstance(value, list) else value))
    return out


def curves(workdir: str) -> list[tuple[bytes, str]]:
    """(PNG, caption) of frx.plots' run figures, drawn in a scratch folder (the run folder is not touched)."""
    from frx import plots

    name = os.path.basename(os.path.normpath(workdir))
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, name)  # the figures' titles use the folder's name
        os.makedirs(copy)
        shutil.copy(os.path.join(workdir, tracking.METRICS_FILE), copy)
        return [(open(p, "rb").read(), os.path.splitext(os.path.basename(p))[0]) for p in plots.write_run_plots(copy)]


def augmentation_preview(cfg: TrainConfig, count: int = 4, variants: int = 5) -> bytes:
    """PNG grid: rows are training records, the original first, then draws of pp_train (host + device ops)."""
    from PIL import Image

    from frx.data import preview
    from frx.data.sources import make_sources

    sources = make_sources(cfg.data, cfg.model.image_size)
    grid, _ = preview.make_preview(sources["train"], cfg.data.pp_train, count=count, variants=variants, seed=cfg.seed)
    image = Image.fromarray(grid)
    scale = max(1, 600 // image.width)  # small images (32x32 and below) are shown enlarged, pixel for pixel
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _faults(records: list[dict], row: runs.RunRow) -> str:
    last = {}
    first_seen = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(FAULT_PREFIXES):
                last[key] = value
                if value and key not in first_seen:
                    first_seen[key] = record["step"]
    parts = []
    if row.status == "failed":
        parts.append(f'<p class="bad">The run failed: {html.escape(row.note)}</p>')
    if not last:
        parts.append('<p class="note">No fault counters were logged.</p>')
    elif not any(last.values()):
        parts.append('<p class="ok">No non-finite steps, no skipped or converted records.</p>')
    rows = [[key, value, first_seen.get(key, "")] for key, value in sorted(last.items())]
    if rows:
        parts.append(_table(["counter (cumulative)", "at the last log", "first non-zero at step"], rows))
    return "".join(parts)


def _evaluations(records: list[dict]) -> str:
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    if not evals:
        return '<p class="note">No evaluation was logged.</p>'
    keys = sorted({k for r in evals for k in r if k.startswith("eval/")})
    return _table(["step", *keys], [[r["step"], *[r.get(k, "") for k in keys]] for r in evals])


def build(workdir: str, *, preview: bool = True) -> str:
    """The report's HTML."""
    from frx.weights import checkpoint_steps

    row = runs.read_run(workdir)
    records = tracking.read_metrics(workdir)
    info = runs.read_json(os.path.join(workdir, tracking.RUN_INFO_FILE))
    title = f"frx run {row.name}"
    total = row.total_steps if row.total_steps is not None else "?"
    metrics = [[k, v] for k, v in row.metrics.items()]
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        _table(["preset", "status", "step / total", "git", "started"],
               [[row.preset, row.status, f"{row.step} / {total}", row.git, row.date]]),
        "<h2>Final metrics</h2>", _table(["metric", "value"], metrics),
        "<h2>Curves</h2>",
        '<div class="curves">' + "".join(_figure(png, caption) for png, caption in curves(workdir)) + "</div>" if records else
        '<p class="note">No metrics were logged yet.</p>',
        "<h2>Evaluations</h2>", _evaluations(records),
        "<h2>Faults and skips</h2>", _faults(records, row),
        "<h2>Augmentation preview</h2>",
    ]
    if preview:
        try:
            cfg = from_dict(TrainConfig, row.config)
            sections.append('<p class="note">Rows are training records: the original, then draws of '
                            f"<code>{html.escape(cfg.data.pp_train)}</code>.</p>")
            sections.append(_figure(augmentation_preview(cfg), "augmentation preview", "pixels"))
        except Exception as e:  # noqa: BLE001  the data may live elsewhere; the rest of the report stands
            sections.append(f'<p class="note">Not available here: {html.escape(type(e).__name__)}: '
                            f"{html.escape(str(e).splitlines()[0] if str(e) else '')}</p>")
    else:
        sections.append('<p class="note">Left out (--no-preview).</p>')
    sections += [
        "<h2>Configuration</h2>", _table(["field", "value"], [list(kv) for kv in _flatten(row.config)]),
        "<h2>System</h2>", _table(["", ""], [[k, v] for k, v in sorted(info.items())]) if info else
        '<p class="note">No run_info.json.</p>',
        "<h2>Checkpoints</h2>", f"<p>{', '.join(map(str, checkpoint_steps(workdir))) or 'none'}</p>",
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")


def write(workdir: str, out: str | None = None, *, preview: bool = True) -> str:
    """Writes the report (default RUN/report.html); returns its path."""
    if not os.path.isfile(os.path.join(workdir, tracking.CONFIG_FILE)):
        raise FileNotFoundError(f"{workdir!r} has no {tracking.CONFIG_FILE}; is it a run folder written by `frx train`?")
    out = out or os.path.join(workdir, "report.html")
    tracking.write_text_atomic(out, build(workdir, preview=preview))
    return out

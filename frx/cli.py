"""The `frx` command. Heavy imports (JAX, Grain, matplotlib) happen inside each command, so
`frx --help` and `frx presets` answer at once.

    frx train PRESET [--workdir DIR] [--section.field VALUE ...]
    frx bench PRESET [--steps N] [--input] [--compare timm] [--section.field VALUE ...]
    frx aot PRESET [--devices N] [--device_memory_gb G] [--section.field VALUE ...]
    frx eval WORKDIR
    frx plot WORKDIR | SWEEP_DIR
    frx coord-check PRESET --widths 64 128 256 --param mup|sp [--steps 3 --seeds 3 --workdir D]
    frx coord-check mlp|cnn --loss xent|l2 --optimizer adam|sgd --widths 64 256 1024 --param mup|sp
    frx sweep FILE.toml [--parallel N]
    frx presets
    frx data preview [ROOT] --pp "decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2, 10)"
    frx data spectrum [--draws N] [--exact]
    frx export WORKDIR --to timm|safetensors|big_vision OUT [--check]
    frx runs [DIR] [--where FIELD<VALUE ...]
    frx report WORKDIR [--out FILE.html]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import re
import sys

USAGE = """usage: frx COMMAND ...

commands:
  train PRESET [overrides]   train (or resume) a preset; `frx train PRESET --help` lists every override
  bench PRESET [overrides]   compile the train step once, time it: img/s, MFU, memory (--input, --compare timm)
  aot PRESET [overrides]     compile the train step for a mesh on fake devices; print per-device memory
  eval WORKDIR               evaluate the latest checkpoint of a run folder
  plot WORKDIR|SWEEP_DIR     write the plots of a run folder, or a sweep's loss-vs-lr transfer figure
  coord-check PRESET ...     muP coordinate check over widths: JSON, PNG and a PASS/FAIL table (PRESET
                             may be mlp or cnn: plain Flax models, --loss xent|l2 --optimizer adam|sgd)
  sweep FILE.toml            run a grid / random sweep of a preset (resumable), write a results table
  presets                    list the presets with one-line descriptions
  data preview [ROOT] --pp S  PNG grid of augmented samples from a folder, TFDS dir or tar shards
  data spectrum              RandAugment's calibration-grid spectrum vs big_vision's TF (PNG + JSON)
  export WORKDIR --to T OUT   the latest checkpoint for timm (T=timm), frx (safetensors) or big_vision (.npz)
  runs [DIR]                 table of the run folders under DIR (default runs/); --where 'optim.lr<1e-3'
  report WORKDIR             one self-contained HTML page: config, curves, evals, faults, augmentations
"""

_DURATIONS = ("total_steps", "total_epochs", "total_examples")
_WARMUPS = ("warmup_steps", "warmup_epochs", "warmup_examples")


def _keep_given(preset, parsed, names):
    """A length given on the command line replaces the preset's length in another unit."""
    given = [n for n in names if getattr(parsed, n) is not None and getattr(parsed, n) != getattr(preset, n)]
    if not given:
        return parsed
    return dataclasses.replace(parsed, **{n: None for n in names if n not in given})


def parse_train_args(preset_name: str, args: list[str]):
    """Preset + dotted overrides -> validated TrainConfig (raises ConfigError / SystemExit)."""
    import tyro

    from frx import presets
    from frx.config import validate

    preset = presets.get(preset_name)
    cfg = _one_line_errors(lambda: tyro.cli(
        type(preset), default=preset, args=args, prog=f"frx train {preset_name}",
        description=presets.describe(preset_name), use_underscores=True,
        # AvoidSubcommands: the model section is a union of architectures; the preset's kind gives flat flags
        config=(tyro.conf.FlagConversionOff, tyro.conf.AvoidSubcommands),
    ), f"frx train {preset_name} --help")
    cfg = _keep_given(preset, cfg, _DURATIONS)
    cfg = dataclasses.replace(cfg, schedule=_keep_given(preset.schedule, cfg.schedule, _WARMUPS))
    return validate(cfg)


def _one_line_errors(parse, help_command: str):
    """Runs a tyro parse; its boxed, multi-line error becomes a ConfigError of one line."""
    from frx.config import ConfigError

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            result = parse()
    except SystemExit as e:
        if e.code in (0, None):  # --help
            sys.stderr.write(captured.getvalue())
            raise
        raise ConfigError(f"{condense_tyro_error(captured.getvalue()).rstrip('.')}; see {help_command}") from None
    sys.stderr.write(captured.getvalue())
    return result


def condense_tyro_error(text: str) -> str:
    """The first paragraph of a tyro error box on one line, plus its "Perhaps you meant" hint."""
    rows = [re.sub(r"^[\s│╭╰─]*|[\s│╮╯─]*$", "", line) for line in text.splitlines()]
    paragraphs, current = [], []
    for row in rows + [""]:
        if row:
            current.append(row)
        elif current:
            paragraphs.append(current)
            current = []
    if not paragraphs:
        return "invalid command line"
    title, body = paragraphs[0][0], paragraphs[0][1:]
    message = " ".join(body) if body else title
    for paragraph in paragraphs[1:]:
        if paragraph[0].startswith("Perhaps you meant") and len(paragraph) > 1:
            message += f" (perhaps you meant {paragraph[1].split()[0]})"
            break
    return message


def cmd_train(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: frx train PRESET [--workdir DIR] [overrides]\n", file=sys.stderr)
        return cmd_presets([]) or 2
    cfg = parse_train_args(argv[0], argv[1:])
    from frx.distributed import setup_distributed

    setup_distributed(cfg.dist)  # before anything touches a device
    from frx.compile_cache import setup_compilation_cache

    setup_compilation_cache()
    from frx.train import get_workdir, train

    if os.path.isdir(get_workdir(cfg)) and os.access(get_workdir(cfg), os.W_OK):
        _ERROR_LOG["folder"] = get_workdir(cfg)

    train(cfg)
    return 0


def cmd_aot(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="frx aot", allow_abbrev=False,
        description="Compile the train step of PRESET ahead of time on N fake CPU devices and print the memory one "
                    "device needs. Other options are `frx train PRESET` overrides (e.g. --mesh.fsdp 8).")
    parser.add_argument("preset")
    parser.add_argument("--devices", type=int, default=8, help="number of (fake CPU) devices of the mesh (default 8)")
    parser.add_argument("--device_memory_gb", type=float, help="memory of one real device in GiB; exit status 1 if the step does not fit")
    parser.add_argument("--memory_fraction", type=float, default=0.75,
                        help="fraction of the device JAX may use (XLA_PYTHON_CLIENT_MEM_FRACTION, default 0.75)")
    args, overrides = parser.parse_known_args(argv)
    if not 0 < args.memory_fraction <= 1:
        parser.error(f"--memory_fraction must lie in (0, 1], got {args.memory_fraction}")
    if not any(o == "--data.root" or o.startswith("--data.root=") for o in overrides):
        overrides = overrides + ["--data.root", "(frx aot reads no images)"]  # compiled from shapes only
    cfg = parse_train_args(args.preset, overrides)
    from frx import aot

    aot.setup_fake_devices(args.devices)  # before JAX starts
    from frx import sharding

    report = aot.memory_report(cfg, sharding.make_mesh(cfg.mesh))
    print(report.format(args.device_memory_gb, args.memory_fraction))
    if args.device_memory_gb and not report.fits(args.device_memory_gb * aot.GIB * args.memory_fraction):
        return 1
    return 0


def cmd_bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="frx bench", allow_abbrev=False,
        description="Compile the train step of PRESET once and time synchronised steps: img/s, step and compile "
                    "time, MFU, peak memory. Other options are `frx train PRESET` overrides (e.g. --batch_size 32).")
    parser.add_argument("preset")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling (default 2)")
    parser.add_argument("--input", action="store_true", help="also time the preset's real host pipeline, end to end")
    parser.add_argument("--compare", choices=["timm"], help="time the same ViT in timm (eager, torch.compile), interleaved")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    args, overrides = parser.parse_known_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    if not args.input and not any(o == "--data.root" or o.startswith("--data.root=") for o in overrides):
        overrides = overrides + ["--data.root", "(frx bench reads no images without --input)"]
    cfg = parse_train_args(args.preset, overrides)
    if args.compare:
        from frx import bench_timm

        bench_timm.check(cfg)
    from frx.distributed import setup_distributed

    setup_distributed(cfg.dist)
    from frx import bench
    from frx.compile_cache import setup_compilation_cache

    setup_compilation_cache()

    values = bench.run(cfg, steps=args.steps, warmup=args.warmup, input_pipeline=args.input, compare=args.compare)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(values, f, indent=1)
    return 0


def cmd_eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx eval", description="Evaluate the latest checkpoint of a run folder.")
    parser.add_argument("workdir")
    parser.add_argument("--splits", nargs="*", help="evaluation splits (default: the run's eval.splits)")
    args = parser.parse_args(argv)
    from frx.compile_cache import setup_compilation_cache
    from frx.train import evaluate_run

    setup_compilation_cache()

    for key, value in evaluate_run(args.workdir, splits=args.splits).items():
        print(f"{key}: {value:.4f}")
    return 0


def cmd_plot(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="frx plot", description="Write the plots of a run folder, or the learning-rate transfer figure of a sweep."
    )
    parser.add_argument("workdir")
    parser.add_argument("--metric", default="train_loss", choices=("train_loss", "val_loss", "val_acc"),
                        help="sweeps: the metric to plot; its optimum is the lowest loss or the highest accuracy")
    parser.add_argument("--x", help="sweeps: the x-axis field (default optim.lr)")
    parser.add_argument("--series", help="sweeps: one curve per value of this field (default model.width)")
    parser.add_argument("--panels", help="sweeps: one panel per value of this field (default mup.param)")
    args = parser.parse_args(argv)
    from frx import plots, sweep

    if sweep.is_sweep_folder(args.workdir):
        written, summary = plots.write_sweep_plots(args.workdir, metric=args.metric, x=args.x,
                                                   series=args.series, panels=args.panels)
        print(summary.rstrip())
    else:
        written = plots.write_run_plots(args.workdir)
    for path in written:
        print(path)
    return 0


def cmd_coord_check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="frx coord-check",
        description="muP coordinate check: mean |x| of every module output over widths for the first steps "
        "on one batch. Further arguments are preset overrides (e.g. --model.depth 2).",
    )
    parser.add_argument("preset")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--param", choices=("mup", "sp", "umup"), default="mup")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, help="learning rate (default: 10x the preset's)")
    parser.add_argument("--batch", type=int, default=32, help="size of the fixed batch")
    parser.add_argument("--base_width", type=int, help="muP base width (default: mup.base_width, else the smallest width)")
    parser.add_argument("--scale_heads", action="store_true", help="keep head_dim and scale the number of heads")
    parser.add_argument("--clip", type=float, default=0.0, help="global-norm gradient clipping (default off)")
    parser.add_argument("--tolerance", type=float, help="largest |log-log slope| that passes (default 0.13)")
    parser.add_argument("--workdir", help="output folder (default runs/coord-check-PRESET-PARAM)")
    parser.add_argument("--loss", choices=("xent", "l2"), default="xent", help="PRESET mlp or cnn: the loss")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                        help="PRESET mlp or cnn: Adam or SGD with momentum 0.9 (a preset takes --optim.name)")
    args, overrides = parser.parse_known_args(argv)
    from frx import coord_check

    tolerance = args.tolerance if args.tolerance is not None else coord_check.DEFAULT_TOLERANCE
    if args.preset in ("mlp", "cnn"):  # plain Flax models, frx.coord_check_nets
        from frx import coord_check_nets

        if overrides:
            from frx.config import ConfigError

            raise ConfigError(f"coord-check {args.preset} takes no preset overrides, got {overrides[0]}")
        result = coord_check_nets.run(args.preset, args.loss, args.widths, param=args.param, optimizer=args.optimizer,
                                      lr=args.lr, steps=args.steps, seeds=args.seeds, base_width=args.base_width,
                                      batch_size=args.batch)
        print(coord_check.format_table(result, tolerance))
        name = f"runs/coord-check-{args.preset}-{args.loss}-{args.optimizer}-{args.param}"
        for path in coord_check.write(result, args.workdir or name, tolerance):
            print(path)
        return 0
    cfg = parse_train_args(args.preset, overrides)
    check = coord_check.CoordCheck(
        cfg, widths=tuple(args.widths), param=args.param, steps=args.steps, seeds=args.seeds, lr=args.lr,
        batch_size=args.batch, base_width=args.base_width, scale_heads=args.scale_heads, grad_clip_norm=args.clip,
    )
    result = coord_check.run(check)
    print(coord_check.format_table(result, tolerance))
    for path in coord_check.write(result, args.workdir or f"runs/coord-check-{args.preset}-{args.param}", tolerance):
        print(path)
    return 0


def cmd_sweep(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx sweep", description="Run a sweep described by a TOML file (see frx.sweep).")
    parser.add_argument("file")
    parser.add_argument("--workdir", help="sweep folder (default: the file's `workdir`, else runs/FILE_STEM)")
    parser.add_argument("--parallel", type=int, help="runs at once (default: the file's `parallel`, else 1)")
    parser.add_argument("--retry_failed", action="store_true", help="run again the runs that failed (not diverged)")
    parser.add_argument("--dry_run", action="store_true", help="print the runs' commands and exit")
    args = parser.parse_args(argv)
    from frx import sweep

    plan = sweep.load(args.file, workdir=args.workdir, parallel=args.parallel)
    if args.dry_run:
        for run in plan.runs:
            print("frx " + " ".join(run.args(plan.preset, plan.workdir)))
        return 0
    for run in plan.runs:  # every run's overrides are checked before the first one starts
        parse_train_args(plan.preset, run.train_overrides(plan.workdir))
    sweep.run_sweep(plan, retry_failed=args.retry_failed)
    print(f"results: {plan.workdir}/results.md; plot with: frx plot {plan.workdir}")
    return 0


def cmd_presets(argv: list[str]) -> int:
    from frx import presets

    width = max(len(n) for n in presets.names())
    for name in presets.names():
        print(f"{name:<{width}}  {presets.describe(name)}")
    return 0


def cmd_data(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx data", description="Look at the input pipeline.")
    sub = parser.add_subparsers(dest="tool", required=True)
    p = sub.add_parser("preview", help="write a PNG grid of augmented samples")
    p.add_argument("root", nargs="?", help="image folder, TFDS data dir or tar shard pattern (none: synthetic)")
    p.add_argument("--pp", default="decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2, 10)|value_range(-1, 1)",
                   help="preprocessing op string (host ops, then device ops)")
    p.add_argument("--source", default="auto", choices=["auto", "synthetic", "digits", "folder", "tfds", "tar"])
    p.add_argument("--split", default="train")
    p.add_argument("--count", type=int, default=6, help="records (rows)")
    p.add_argument("--variants", type=int, default=5, help="augmented draws per record (columns after the original)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="preview.png")
    s = sub.add_parser("spectrum", help="RandAugment on the 224x224 calibration grid vs big_vision's TF")
    s.add_argument("--draws", type=int, default=4096, help="random draws (ignored with --exact)")
    s.add_argument("--layers", type=int, default=2)
    s.add_argument("--magnitude", type=float, default=10)
    s.add_argument("--no-bug-compat", dest="bug_compat", action="store_false",
                   help="fix the Contrast (issue #109) and Solarize (issue #110) quirks")
    s.add_argument("--exact", action="store_true", help="enumerate every op pair instead of sampling (2 layers)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="spectrum", help="output folder for spectrum.png and spectrum.json")
    args = parser.parse_args(argv)
    if args.tool == "preview":
        from frx.data import preview

        path, labels = preview.run(args.root, args.pp, source=args.source, split=args.split, out=args.out,
                                   count=args.count, variants=args.variants, seed=args.seed)
        print(f"{path}: rows are records with labels {labels}; first column the original")
        return 0
    from frx.data import spectrum

    settings = {"num_layers": args.layers, "magnitude": args.magnitude, "bug_compat": args.bug_compat,
                "mode": "exact" if args.exact else "sampled"}
    if args.exact:
        if args.layers != 2:
            raise SystemExit("frx data spectrum --exact enumerates op pairs: it needs --layers 2")
        fractions = spectrum.exact_spectrum(magnitude=args.magnitude, seed=args.seed, bug_compat=args.bug_compat)
        counts, columns, draws = fractions * 224 * 224 * 1e6, None, 0
    else:
        counts, columns, grey = spectrum.sample_spectrum(args.draws, num_layers=args.layers, magnitude=args.magnitude,
                                                         seed=args.seed, bug_compat=args.bug_compat)
        draws, settings["stays_grey"] = args.draws, grey
    summary = spectrum.summarize(counts, draws=draws, settings=settings)
    for path in spectrum.write_report(args.out, counts, columns, summary):
        print(path)
    print(f"total variation distance to big_vision's TF spectrum: {summary['total_variation_to_tf']:.4f}")
    return 0


def cmd_export(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx export", description="Write the latest checkpoint of a run folder "
                                     "as a timm VisionTransformer state dict, frx's own safetensors or a big_vision .npz.")
    parser.add_argument("workdir")
    parser.add_argument("--to", required=True, choices=("timm", "safetensors", "big_vision"))
    parser.add_argument("out", help="output file: .safetensors (timm, safetensors) or .npz (big_vision)")
    parser.add_argument("--check", action="store_true", help="timm: compare timm's logits with frx's (needs torch, timm)")
    args = parser.parse_args(argv)
    from frx import export

    written = export.export_run(args.workdir, args.to, args.out)
    print(f"{args.out}: step {written['step']}, {written['tensors']} tensors, {written['params']:,} parameters")
    if args.to == "timm":
        print(written["code"])
        if args.check:
            diff = export.check_timm_export(args.workdir, args.out)
            print(f"max |frx - timm| logit difference on 8 random images: {diff:.2e}")
            return 0 if diff <= 1e-4 else 1
    return 0


def cmd_runs(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx runs", description="List the run folders under DIR.")
    parser.add_argument("dir", nargs="?", default="runs")
    parser.add_argument("--where", action="append", default=[],
                        help="FIELD OP VALUE, e.g. 'optim.lr<1e-3', 'status=finished', 'eval/val/acc>=0.5' (repeatable)")
    args = parser.parse_args(argv)
    from frx import runs

    wheres = [runs.parse_where(w) for w in args.where]
    rows = runs.select([runs.read_run(path, args.dir) for path in runs.find_runs(args.dir)], wheres)
    print(runs.format_table(rows) if rows else f"no runs under {args.dir}" + (" match" if wheres else ""))
    return 0


def cmd_report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx report", description="Write one self-contained HTML report of a run.")
    parser.add_argument("workdir")
    parser.add_argument("--out", help="output file (default WORKDIR/report.html)")
    parser.add_argument("--no-preview", dest="preview", action="store_false", help="leave out the augmentation preview")
    args = parser.parse_args(argv)
    from frx import report

    print(report.write(args.workdir, args.out, preview=args.preview))
    return 0


COMMANDS = {
    "train": cmd_train,
    "aot": cmd_aot,
    "bench": cmd_bench,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "coord-check": cmd_coord_check,
    "sweep": cmd_sweep,
    "presets": cmd_presets,
    "data": cmd_data,
    "export": cmd_export,
    "runs": cmd_runs,
    "report": cmd_report,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"frx: unknown command {argv[0]!r}", file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    from frx.config import ConfigError

    if argv[0] in ("train", "eval", "coord-check", "bench"):
        from frx import process_env

        process_env.maybe_reexec(argv)
    from frx.errors import RunError

    try:
        sys.exit(COMMANDS[argv[0]](argv[1:]))
    except (ConfigError, FileNotFoundError) as e:
        print(f"frx: error: {e}", file=sys.stderr)
        sys.exit(2)
    except RunError as e:  # the run started and stopped; its checkpoints are intact (frx.errors)
        print(f"frx: error: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001  anything unforeseen: one line here, the whole traceback in a file
        path = _write_traceback(_ERROR_LOG["folder"])
        text = str(e).strip().splitlines()
        print(f"frx: error: {type(e).__name__}: {text[0][:300] if text else ''} (traceback in {path})", file=sys.stderr)
        sys.exit(1)


# Where an unforeseen error's traceback goes: the run folder once `frx train` knows it, else the
# temporary folder.
_ERROR_LOG = {"folder": None}


def _write_traceback(folder: str | None) -> str:
    import tempfile
    import traceback

    for candidate in (folder, tempfile.gettempdir()):
        if candidate is None:
            continue
        path = os.path.join(candidate, f"frx-error-{os.getpid()}.log")
        try:
            with open(path, "w") as f:
                traceback.print_exc(file=f)
            return path
        except OSError:
            continue
    return "(not written: no writable folder)"

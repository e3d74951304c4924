"""The `frx` command. Heavy imports (JAX, Grain, matplotlib) happen inside each command, so
`frx --help` and `frx presets` answer at once.

    frx train PRESET [--workdir DIR] [--section.field VALUE ...]
    frx eval WORKDIR
    frx plot WORKDIR | SWEEP_DIR
    frx coord-check PRESET --widths 64 128 256 --param mup|sp [--steps 3 --seeds 3 --workdir D]
    frx sweep FILE.toml [--parallel N]
    frx presets
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

USAGE = """usage: frx COMMAND ...

commands:
  train PRESET [overrides]   train (or resume) a preset; `frx train PRESET --help` lists every override
  eval WORKDIR               evaluate the latest checkpoint of a run folder
  plot WORKDIR|SWEEP_DIR     write the plots of a run folder, or a sweep's loss-vs-lr transfer figure
  coord-check PRESET ...     muP coordinate check over widths: JSON, PNG and a PASS/FAIL table
  sweep FILE.toml            run a grid / random sweep of a preset (resumable), write a results table
  presets                    list the presets with one-line descriptions
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
    cfg = tyro.cli(type(preset), default=preset, args=args, prog=f"frx train {preset_name}",
                   description=presets.describe(preset_name), use_underscores=True,
                   config=(tyro.conf.FlagConversionOff,))
    cfg = _keep_given(preset, cfg, _DURATIONS)
    cfg = dataclasses.replace(cfg, schedule=_keep_given(preset.schedule, cfg.schedule, _WARMUPS))
    return validate(cfg)


def cmd_train(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: frx train PRESET [--workdir DIR] [overrides]\n", file=sys.stderr)
        return cmd_presets([]) or 2
    cfg = parse_train_args(argv[0], argv[1:])
    from frx.train import train

    train(cfg)
    return 0


def cmd_eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="frx eval", description="Evaluate the latest checkpoint of a run folder.")
    parser.add_argument("workdir")
    parser.add_argument("--splits", nargs="*", help="evaluation splits (default: the run's eval.splits)")
    args = parser.parse_args(argv)
    from frx.train import evaluate_run

    for key, value in evaluate_run(args.workdir, splits=args.splits).items():
        print(f"{key}: {value:.4f}")
    return 0


def cmd_plot(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="frx plot", description="Write the plots of a run folder, or the learning-rate transfer figure of a sweep."
    )
    parser.add_argument("workdir")
    parser.add_argument("--metric", default="train_loss", help="sweeps: train_loss, val_loss or val_acc")
    parser.add_argument("--x", help="sweeps: the x-axis field (default optim.lr)")
    parser.add_argument("--series", help="sweeps: one curve per value of this field (default model.width)")
    parser.add_argument("--panels", help="sweeps: one panel per value of this field (default mup.param)")
    args = parser.parse_args(argv)
    from frx import plots, sweep

    if sweep.is_sweep_folder(args.workdir):
        written = plots.write_sweep_plots(args.workdir, metric=args.metric, x=args.x, series=args.series,
                                          panels=args.panels)
        with open(written[1]) as f:
            print(f.read().rstrip())
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
    parser.add_argument("--param", choices=("mup", "sp"), default="mup")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, help="learning rate (default: 10x the preset's)")
    parser.add_argument("--batch", type=int, default=32, help="size of the fixed batch")
    parser.add_argument("--base_width", type=int, help="muP base width (default: mup.base_width, else the smallest width)")
    parser.add_argument("--scale_heads", action="store_true", help="keep head_dim and scale the number of heads")
    parser.add_argument("--clip", type=float, default=0.0, help="global-norm gradient clipping (default off)")
    parser.add_argument("--tolerance", type=float, help="largest |log-log slope| that passes (default 0.13)")
    parser.add_argument("--workdir", help="output folder (default runs/coord-check-PRESET-PARAM)")
    args, overrides = parser.parse_known_args(argv)
    from frx import coord_check

    cfg = parse_train_args(args.preset, overrides)
    tolerance = args.tolerance if args.tolerance is not None else coord_check.DEFAULT_TOLERANCE
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
        parse_train_args(plan.preset, run.args(plan.preset, plan.workdir)[2:])
    sweep.run_sweep(plan, retry_failed=args.retry_failed)
    print(f"results: {plan.workdir}/results.md; plot with: frx plot {plan.workdir}")
    return 0


def cmd_presets(argv: list[str]) -> int:
    from frx import presets

    width = max(len(n) for n in presets.names())
    for name in presets.names():
        print(f"{name:<{width}}  {presets.describe(name)}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "coord-check": cmd_coord_check,
    "sweep": cmd_sweep,
    "presets": cmd_presets,
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"frx: unknown command {argv[0]!r}", file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    from frx.config import ConfigError

    if argv[0] in ("train", "eval", "coord-check"):
        from frx import launch

        launch.maybe_reexec(argv)
    try:
        sys.exit(COMMANDS[argv[0]](argv[1:]))
    except (ConfigError, FileNotFoundError) as e:
        print(f"frx: error: {e}", file=sys.stderr)
        sys.exit(2)

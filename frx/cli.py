"""The `frx` command. Heavy imports (JAX, Grain, matplotlib) happen inside each command, so
`frx --help` and `frx presets` answer at once.

    frx train PRESET [--workdir DIR] [--section.field VALUE ...]
    frx aot PRESET [--devices N] [--device_memory_gb G] [--section.field VALUE ...]
    frx eval WORKDIR
    frx plot WORKDIR
    frx presets
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

USAGE = """usage: frx COMMAND ...

commands:
  train PRESET [overrides]   train (or resume) a preset; `frx train PRESET --help` lists every override
  aot PRESET [overrides]     compile the train step for a mesh on fake devices; print per-device memory
  eval WORKDIR               evaluate the latest checkpoint of a run folder
  plot WORKDIR               write loss / learning-rate / accuracy plots of a run folder
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
    from frx.distributed import setup_distributed

    setup_distributed(cfg.dist)  # before anything touches a device
    from frx.train import train

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
    parser = argparse.ArgumentParser(prog="frx plot", description="Write the plots of a run folder.")
    parser.add_argument("workdir")
    args = parser.parse_args(argv)
    from frx import plots

    for path in plots.write_run_plots(args.workdir):
        print(path)
    return 0


def cmd_presets(argv: list[str]) -> int:
    from frx import presets

    width = max(len(n) for n in presets.names())
    for name in presets.names():
        print(f"{name:<{width}}  {presets.describe(name)}")
    return 0


COMMANDS = {"train": cmd_train, "aot": cmd_aot, "eval": cmd_eval, "plot": cmd_plot, "presets": cmd_presets}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"frx: unknown command {argv[0]!r}", file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    from frx.config import ConfigError

    if argv[0] in ("train", "eval"):
        from frx import launch

        launch.maybe_reexec(argv)
    try:
        sys.exit(COMMANDS[argv[0]](argv[1:]))
    except (ConfigError, FileNotFoundError) as e:
        print(f"frx: error: {e}", file=sys.stderr)
        sys.exit(2)

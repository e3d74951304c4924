"""The command line: dotted overrides, lengths in other units, one-line errors and exit codes."""


import subprocess
import sys

import pytest

from frx import cli, presets
from frx.config import ConfigError


def test_dotted_overrides_and_total_steps_replaces_epochs():
    cfg = cli.parse_train_args("vit_s16_i1k", ["--optim.lr", "3e-3", "--total_steps", "100", "--seed", "7",
                                               "--batch_size", "256", "--schedule.warmup_steps", "10",
                                               "--data.root", "/x", "--model.variant", "B/32"])
    assert cfg.optim.lr == 3e-3 and cfg.seed == 7 and cfg.batch_size == 256
    assert cfg.total_steps == 100 and cfg.total_epochs is None
    assert cfg.model.dims().patch_size == 32


def test_warmup_in_epochs_replaces_preset_warmup_steps():
    cfg = cli.parse_train_args("demo", ["--schedule.warmup_epochs", "0.5"])
    assert cfg.schedule.warmup_epochs == 0.5 and cfg.schedule.warmup_steps is None


HELP = ".*; see frx train demo --help$"


CLI_ERRORS = [
    (["--model.widht", "3"], "^Unrecognized options: --model.widht, 3 \\(perhaps you meant --model.width\\)" + HELP),
    (["--batch_size", "abc"], "^Error parsing --batch_size: invalid literal for int\\(\\) with base 10: 'abc'" + HELP),
    (["--total_steps", "1.5"], "^Error parsing --total_steps" + HELP),
    (["--model.pool", "avg"], "^invalid choice 'avg' for argument '--model.pool'" + HELP),
    (["--faults.nonfinite", "maybe"], "^invalid choice 'maybe' for argument '--faults.nonfinite'" + HELP),
    (["--ckpt.save_on_signal", "perhaps"], "--ckpt.save_on_signal" + HELP),
    (["--seed"], "^Missing value for argument '--seed'" + HELP),
    (["--optim.wd_mults", "x"], "^Error parsing --optim.wd_mults" + HELP),
    (["--model.num_heads", "5"], "^model width 96 is not divisible by num_heads 5"),
    (["--ckpt.every_minutes", "-1"], "^ckpt.every_minutes must be >= 0"),
]


@pytest.mark.parametrize("args,message", CLI_ERRORS, ids=[" ".join(a) for a, _ in CLI_ERRORS])
def test_bad_command_line_gives_one_line_error(args, message):
    with pytest.raises(ConfigError, match=message) as info:
        cli.parse_train_args("demo", args)
    assert "\n" not in str(info.value)


def test_cli_reports_config_errors_in_one_line_and_exits_2():
    proc = subprocess.run([sys.executable, "-m", "frx", "train", "demo", "--model.num_heads", "5"],
                          capture_output=True, text=True, env={"FRX_LAUNCHED": "1", "PATH": ""}, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("frx: error: model width 96 is not divisible")


def test_presets_command_lists_every_preset(capsys):
    assert cli.cmd_presets([]) == 0
    out = capsys.readouterr().out
    for name in presets.names():
        assert name in out


def test_an_unforeseen_error_is_one_line_with_the_traceback_in_a_file(monkeypatch, capsys):
    def broken(argv):
        raise RuntimeError("something nobody planned for\nwith a second line")

    monkeypatch.setitem(cli.COMMANDS, "presets", broken)
    with pytest.raises(SystemExit) as info:
        cli.main(["presets"])
    assert info.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("frx: error: RuntimeError: something nobody planned for (traceback in ")
    path = line.rsplit("traceback in ", 1)[1].rstrip(")")
    with open(path) as f:
        assert "Traceback" in f.read()

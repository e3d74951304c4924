"""The allowed import directions between frx's layers (pyproject.toml [tool.importlinter], explained in
CONVENTIONS.md) hold, and the check fails when a forbidden import is added."""

import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib

import pytest

import frx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lint_imports(root: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": root}  # the frx under `root`, not the installed one
    command = [os.path.join(os.path.dirname(sys.executable), "lint-imports"), "--config", "pyproject.toml", "--no-cache"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _contracts() -> list[dict]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def test_the_declared_import_directions_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in result.stdout


def test_config_contract_covers_every_module_of_frx():
    """A module added later must not slip past the rule that config imports nothing of frx."""
    (config_rule,) = [c for c in _contracts() if c["source_modules"] == ["frx.config"]]
    modules = {f"frx.{m.name}" for m in pkgutil.iter_modules(frx.__path__)} - {"frx.config", "frx.__main__"}
    assert modules <= set(config_rule["forbidden_modules"]), sorted(modules - set(config_rule["forbidden_modules"]))


@pytest.mark.parametrize("module, line, contract", [
    ("frx/config/base.py", "import jax", "config imports no JAX and nothing else from frx"),
    ("frx/models/vit.py", "from frx.data import pipeline", "models import no data code"),
    ("frx/data/pipeline.py", "from frx import models", "data imports no models"),
    ("frx/train.py", "from frx.tasks import classification", "the loop knows the task protocol, never a concrete task"),
])
def test_a_forbidden_import_breaks_the_check(tmp_path, module, line, contract):
    copy = tmp_path / "repo"
    shutil.copytree(os.path.join(ROOT, "frx"), copy / "frx", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), copy / "pyproject.toml")
    with open(copy / module, "a") as f:
        f.write(f"\n{line}  # added by the test\n")
    result = _lint_imports(str(copy))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout


def test_no_module_of_frx_is_part_of_an_import_cycle():
    import grimp  # import-linter's graph builder

    graph = grimp.build_graph("frx")
    cycles = sorted({tuple(sorted((a, b))) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                     if b.startswith("frx") and a != b and graph.chain_exists(importer=b, imported=a)})
    assert not cycles, cycles

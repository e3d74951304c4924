"""JAX's persistent compilation cache, on by default for `frx train`, `frx eval` and `frx bench`.

A second start of the same step (a resumed run, the next run of a sweep, a benchmark repeated) reads
the compiled executable from disk instead of compiling it again. The cache lives in the user's cache
folder, shared by all runs: `$XDG_CACHE_HOME/frx/jax` (default `~/.cache/frx/jax`). XLA keys entries by
the program, the compile options, the backend and the JAX/XLA versions, so a stale entry is never used.

    FRX_COMPILATION_CACHE=off         no persistent cache
    FRX_COMPILATION_CACHE=/some/dir   another folder
    JAX_COMPILATION_CACHE_DIR=...     JAX's own setting, when given, wins

Programs that compile in under MIN_COMPILE_SECONDS are not written (JAX's default is 1 s; the eval
and init programs of small models compile in less and are worth keeping too), unless JAX's
JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise.
"""

from __future__ import annotations

import os

ENV = "FRX_COMPILATION_CACHE"
MIN_COMPILE_SECONDS = 0.2


def get_cache_dir(env: dict[str, str] | None = None) -> str | None:
    """The folder the cache should use, or None when it is turned off."""
    env = os.environ if env is None else env
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return env["JAX_COMPILATION_CACHE_DIR"]
    setting = env.get(ENV, "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return os.path.abspath(os.path.expanduser(setting))
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "frx", "jax")


def setup_compilation_cache() -> str | None:
    """Points JAX's persistent compilation cache at get_cache_dir(); returns the folder (None: off,
    or the folder cannot be created, in which case compiling simply is not cached)."""
    import jax

    folder = get_cache_dir()
    if folder is None:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return folder

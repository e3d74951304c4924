"""frx.compile_cache: where the persistent cache goes, and that a second process reads it."""

import os
import subprocess
import sys
import textwrap

from frx import compile_cache


def test_cache_folder_by_default_in_the_user_cache_and_settable_or_off(tmp_path):
    assert compile_cache.get_cache_dir({}) == os.path.join(os.path.expanduser("~"), ".cache", "frx", "jax")
    assert compile_cache.get_cache_dir({"XDG_CACHE_HOME": "/c"}) == "/c/frx/jax"
    assert compile_cache.get_cache_dir({"FRX_COMPILATION_CACHE": str(tmp_path)}) == str(tmp_path)
    assert compile_cache.get_cache_dir({"FRX_COMPILATION_CACHE": "off"}) is None
    assert compile_cache.get_cache_dir({"FRX_COMPILATION_CACHE": "off", "JAX_COMPILATION_CACHE_DIR": "/j"}) == "/j"


SCRIPT = textwrap.dedent("""
    import time, jax, jax.numpy as jnp
    from frx.compile_cache import setup_compilation_cache
    print(setup_compilation_cache())
    from jax._src import monitoring
    hits = []
    monitoring.register_event_listener(lambda event, **kw: hits.append(event) if "cache_hits" in event else None)
    f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(axis=0).cumsum())
    f(jnp.ones((256, 256))).block_until_ready()
    print("hits", len(hits))
""")


def test_a_second_process_reads_the_compiled_program_from_the_cache(tmp_path):
    env = {**os.environ, "FRX_COMPILATION_CACHE": str(tmp_path / "cache"), "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

    def run():
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True).stdout
        return out.splitlines()

    first = run()
    assert first[0] == str(tmp_path / "cache") and first[-1] == "hits 0"
    assert os.listdir(tmp_path / "cache")  # written
    assert run()[-1] != "hits 0"  # read back

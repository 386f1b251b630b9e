"""Test setup: the CPU backend with 4 fake devices, and one compilation cache for the session.

Both must be fixed before jax initialises a backend, hence here, before any test module runs.

Many tests launch the same tiny run several times (a run, its resumption, an uninterrupted
reference), each building its step afresh, so jax's in-memory cache never hits. XLA's own
persistent cache, keyed by the compiled program and the compiler's flags, makes every later
compilation of the same program a read from disk: the executables are the ones XLA would build
again, so no assertion changes. The folder is made once per session by the process that
imports this file first and handed on through the environment, so pytest-xdist workers and the
subprocess runs of the resume tests share it; it is removed when that process exits.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="ebm_gan_test_xla_cache_")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import chex  # noqa: E402  pylint: disable=g-import-not-at-top

chex.set_n_cpu_devices(4)

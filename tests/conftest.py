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
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _cache = tempfile.mkdtemp(prefix="ebm_gan_test_xla_cache_")
  atexit.register(shutil.rmtree, _cache, ignore_errors=True)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import chex  # noqa: E402  pylint: disable=g-import-not-at-top
import pytest  # noqa: E402  pylint: disable=g-import-not-at-top

chex.set_n_cpu_devices(4)


@pytest.fixture
def launcher_with_sigint():
  """The command that runs ``python -m experiments.run`` with Ctrl-C's default handler.

  Python keeps SIGINT ignored when it starts ignored (a background job of a non-interactive
  shell, nohup), and children inherit that; resetting it in the child with ``preexec_fn``
  would fork after JAX's threads are up. The child resets it itself, then runs the launcher.
  """
  code = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
          "sys.argv[0] = 'experiments.run'; runpy.run_module('experiments.run', "
          "run_name='__main__', alter_sys=True)")
  return [sys.executable, "-c", code]

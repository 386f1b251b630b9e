"""Test setup: the CPU backend with 4 fake devices, for the data-parallel tests.

Both must be fixed before jax initialises a backend, hence here, before any test module runs.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import chex  # noqa: E402  pylint: disable=g-import-not-at-top

chex.set_n_cpu_devices(4)

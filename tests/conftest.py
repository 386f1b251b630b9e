"""Test setup: float32 CPU, and 4 fake CPU devices for the data-parallel tests.

XLA_FLAGS must be set before jax is first imported, so it is set here.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

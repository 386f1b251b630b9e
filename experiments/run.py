"""Launches an experiment: ``python -m experiments.run --config experiments/configs/X.py``.

All logic lives in :mod:`ebm_gan.runner.cli`; see its docstring for flags and exit codes.
"""

import os
import sys

from ebm_gan.runner import cli

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.py")

if __name__ == "__main__":
  sys.exit(cli.main(sys.argv[1:], DEFAULT_CONFIG))

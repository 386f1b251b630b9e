"""Launches an experiment: ``python -m experiments.run --config experiments/configs/X.py``.

All logic lives in :mod:`ebm_gan.launch`; see its docstring for flags and exit codes.
"""

import os
import sys

from ebm_gan import launch

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.py")

if __name__ == "__main__":
  sys.exit(launch.main(sys.argv[1:], DEFAULT_CONFIG))

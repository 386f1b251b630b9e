"""Launches an experiment: ``python -m experiments.run --config experiments/configs/X.py``.

All logic lives in :mod:`ebm_gan.runner.cli`; see its docstring for flags and exit codes.
"""

import os
import signal
import sys

# Ctrl-C or SIGTERM while jax and the launcher are imported is held, then handled by the
# launcher (exit 130/143) instead of a traceback from inside an import. A SIGINT that was
# ignored (a background job) stays ignored.
_EARLY = []
if __name__ == "__main__":
  for _sig in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_sig) != signal.SIG_IGN:
      signal.signal(_sig, lambda signum, frame: _EARLY.append(signum))

from ebm_gan.runner import cli  # pylint: disable=g-import-not-at-top,wrong-import-position

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.py")

if __name__ == "__main__":
  _STATUS = cli.main(sys.argv[1:], DEFAULT_CONFIG, early_signals=_EARLY)
  if _STATUS == cli.EXIT_STORAGE:  # reported; the writers' exit handlers (TensorBoard's)
    for _stream in (sys.stdout, sys.stderr):  # would only fail again on the full disk
      try:
        _stream.flush()
      except OSError:
        pass
    os._exit(_STATUS)  # pylint: disable=protected-access
  sys.exit(_STATUS)

"""What the launcher tests share: the repository's folders, and the arguments of a tiny run.

A tiny run (for testing only) trains the default config's game with hidden layers of
``width`` units for ``steps`` steps of batch ``batch``, without the R1 penalty, periodic
pictures or TensorBoard, and evaluates on ``eval_samples`` samples.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "experiments", "configs")
DEFAULT = os.path.join(CONFIGS, "default.py")


def tiny(steps: int, *, batch: int = 16, width: int = 8, per_dispatch: int = 10,
         eval_samples: int = 100, **fields) -> list[str]:
  """The launcher arguments of a tiny run; ``fields`` (``a__b=v`` for ``a.b``) add or replace
  ``--config.`` settings, e.g. ``checkpoint_every=30`` (None: the config's own value)."""
  settings = {"steps": steps, "steps_per_dispatch": per_dispatch, "batch_size": batch,
              "model.energy_hidden": f"({width},)", "model.generator_hidden": f"({width},)",
              "entropy.mi.hidden": f"({width},)", "penalty.name": "none",
              "eval_samples": eval_samples, "picture_every": 0, "tensorboard_every": 0}
  settings.update({k.replace("__", "."): v for k, v in fields.items()})
  return [f"--config.{k}={v}" for k, v in settings.items() if v is not None] + ["--no-progress"]

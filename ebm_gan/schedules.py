"""Decaying rates: η_t = η·s(t/T), linear or cosine (docs/theory.md (7.21)).

Used for both players' learning rates (``optimizer.schedule``) and, as a factor of the
penalty weight, for an annealed R1 (``penalty.schedule``, docs/theory.md (6.10)).
"""

from __future__ import annotations

import optax

from ebm_gan.errors import InvalidArgumentError

SCHEDULES = ("constant", "linear", "cosine")


def decayed_learning_rate(learning_rate, schedule: str, total_steps: int,
                          final_fraction: float = 0.1) -> optax.ScalarOrSchedule:
  r"""η_t = η · s(t/T): a learning rate decaying from η to ``final_fraction``·η over T steps.

  .. math::
    s_{\text{linear}}(u) = 1 - (1 - f)\,u, \qquad
    s_{\text{cosine}}(u) = f + (1 - f)\,\tfrac12 (1 + \cos \pi u), \qquad u = \min(t/T, 1),

  so an optimistic method that hovers around the equilibrium at a constant rate
  (docs/theory.md §7: its fixed point is exact but the noise of the stochastic
  directions keeps the iterates at a distance that scales with η) settles as
  η_t shrinks. ``'constant'`` returns ``learning_rate`` unchanged (not a schedule,
  so an optimiser's state is the same as with a plain number). s is optax's
  ``linear_schedule`` or ``cosine_decay_schedule`` from 1 to f. ``learning_rate``
  may be a traced scalar (vectorised sweeps) or itself a schedule.

  Args:
    learning_rate: η, a positive number, a traced scalar or an optax schedule.
    schedule: 'constant', 'linear' or 'cosine'.
    total_steps: T, the steps over which the rate decays (then stays at f·η).
    final_fraction: f ∈ [0, 1].

  >>> lr = decayed_learning_rate(1.0, "linear", 10, 0.1)
  >>> [round(float(lr(t)), 3) for t in (0, 5, 10, 20)]
  [1.0, 0.55, 0.1, 0.1]
  """
  if schedule not in SCHEDULES:
    raise InvalidArgumentError(f"schedule={schedule!r} is not allowed; allowed: "
                               f"{', '.join(SCHEDULES)}.")
  if isinstance(final_fraction, bool) or not 0 <= final_fraction <= 1:
    raise InvalidArgumentError(f"final_lr_fraction={final_fraction!r} is not allowed; "
                               "expected a number in [0, 1].")
  if schedule == "constant":
    return learning_rate
  f = float(final_fraction)
  shape = (optax.linear_schedule(1.0, f, total_steps) if schedule == "linear"
           else optax.cosine_decay_schedule(1.0, total_steps, alpha=f))

  def rate(count):
    base = learning_rate(count) if callable(learning_rate) else learning_rate
    return base * shape(count)
  return rate

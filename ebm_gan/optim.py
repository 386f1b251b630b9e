"""Optimisers for games, written as optax transforms (docs/theory.md §7).

Every transform here receives directions ``d_i``, the gradient of player i's
*own* loss (what optax expects; a maximising player's loss is its negated objective, so
no sign is ever flipped by the user), and returns the update ``u_i`` that
``optax.apply_updates`` adds to the parameters: ``θ_i ← θ_i + u_i``.

* :func:`gda`: ``u_t = -η d_t`` (gradient descent-ascent once every player
  descends its own loss).
* :func:`ogda`: ``u_t = -η((α+β) d_t - β d_{t-1})`` (optimistic GDA), with the
  two first-step conventions in use (``'repeat'``: d_{-1} = d_0, optax's;
  ``'zero'``: d_{-1} = 0, Daskalakis et al. 2018).
* :func:`optimistic_adam`: the same optimism applied to Adam's step direction.
* :func:`adam`: Adam with the GAN default ``b1 = 0.5``.

Players can have different optimisers and learning rates (two-timescale
updates, Heusel et al. 2017) through :func:`per_player`; the update schemes in
:mod:`ebm_gan.schemes` consume ``player_transforms(tx, players)``.
"""

from __future__ import annotations

import inspect
import numbers
import types
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from ebm_gan.errors import InvalidArgumentError, lookup

FIRST_STEPS = ("repeat", "zero")


class ScaleByOptimisticZeroStartState(NamedTuple):
  """State of :func:`scale_by_optimistic_zero_start`: the previous direction."""
  previous_gradient: optax.Updates


def scale_by_optimistic_zero_start(alpha: float = 1.0,
                                   beta: float = 1.0) -> optax.GradientTransformation:
  r"""Generalised optimistic gradient with a zero history before the first step.

  .. math::
    u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1}, \qquad g_{-1} = 0,

  so the first output is ``(α+β) g_0`` (``2 g_0`` for α = β = 1), as in the
  recursion of Daskalakis et al. started from an empty past. It differs from
  ``optax.scale_by_optimistic_gradient`` (whose first output is ``α g_0``) only
  at t = 0.

  Args:
    alpha: coefficient of the current direction beyond the negative momentum.
    beta: coefficient of the negative momentum ``g_t - g_{t-1}``.

  Returns:
    An ``optax.GradientTransformation``.

  >>> tx = scale_by_optimistic_zero_start()
  >>> g = jnp.array([1.0, -2.0])
  >>> u, s = tx.update(g, tx.init(g))
  >>> u.tolist()
  [2.0, -4.0]
  >>> u, s = tx.update(jnp.array([0.5, 0.5]), s)
  >>> u.tolist()
  [0.0, 3.0]

  References:
    Daskalakis, Ilyas, Syrgkanis, Zeng, "Training GANs with Optimism", ICLR 2018.
  """

  def init_fn(params):
    return ScaleByOptimisticZeroStartState(
        previous_gradient=jax.tree.map(jnp.zeros_like, params))

  def update_fn(updates, state, params=None):
    del params
    new = jax.tree.map(lambda g, p: (alpha + beta) * g - beta * p,
                       updates, state.previous_gradient)
    return new, ScaleByOptimisticZeroStartState(previous_gradient=updates)

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_optimistic(alpha: float = 1.0, beta: float = 1.0,
                        first_step: str = "repeat") -> optax.GradientTransformation:
  r"""``u_t = (α+β) g_t - β g_{t-1}`` with the chosen first-step convention.

  Args:
    alpha: coefficient of the current direction.
    beta: negative-momentum coefficient.
    first_step: ``'repeat'`` uses ``g_{-1} = g_0`` (optax's
      ``scale_by_optimistic_gradient``, first output ``α g_0``); ``'zero'``
      uses ``g_{-1} = 0`` (first output ``(α+β) g_0``).

  Returns:
    An ``optax.GradientTransformation``.
  """
  _check_first_step(first_step)
  if first_step == "repeat":
    return optax.scale_by_optimistic_gradient(alpha=alpha, beta=beta)
  return scale_by_optimistic_zero_start(alpha=alpha, beta=beta)


def gda(learning_rate: optax.ScalarOrSchedule) -> optax.GradientTransformation:
  r"""Gradient descent on each player's own loss (GDA in min-max form): ``optax.sgd``.

  .. math::  u_t = -\eta_t\, d_t

  Args:
    learning_rate: η, a scalar or an optax schedule.

  Returns:
    An ``optax.GradientTransformation``.

  >>> tx = gda(0.1)
  >>> u, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
  >>> round(float(u[0]), 6)
  -0.1
  """
  return optax.sgd(learning_rate)


def ogda(learning_rate: optax.ScalarOrSchedule, alpha: float = 1.0,
         beta: float = 1.0, first_step: str = "repeat") -> optax.GradientTransformation:
  r"""Optimistic gradient descent(-ascent).

  .. math::
    u_t = -\eta_t \big((\alpha + \beta)\, d_t - \beta\, d_{t-1}\big)

  α = β = 1 is the classic ``θ_{t+1} = θ_t - η(2 d_t - d_{t-1})``. With
  ``first_step='repeat'`` this is ``optax.optimistic_gradient_descent``
  exactly (d_{-1} = d_0, first step ``-η α d_0``); ``'zero'`` starts from an
  empty history (d_{-1} = 0, first step ``-η (α+β) d_0``). Both converge
  linearly on bilinear games for small η with the same asymptotic rate; only
  the constant differs.

  Args:
    learning_rate: η, a scalar or an optax schedule.
    alpha: weight of the current direction.
    beta: weight of the negative momentum.
    first_step: ``'repeat'`` or ``'zero'``.

  Returns:
    An ``optax.GradientTransformation``.

  >>> tx = ogda(0.1, first_step='zero')
  >>> u, _ = tx.update(jnp.array([1.0]), tx.init(jnp.zeros(1)))
  >>> round(float(u[0]), 6)
  -0.2

  References:
    Daskalakis et al., "Training GANs with Optimism", ICLR 2018;
    Mokhtari, Ozdaglar, Pattathil, arXiv 1901.08511, 2019.
  """
  return optax.chain(scale_by_optimistic(alpha, beta, first_step),
                     optax.scale_by_learning_rate(learning_rate))


def optimistic_adam(learning_rate: optax.ScalarOrSchedule, b1: float = 0.5,
                    b2: float = 0.9, eps: float = 1e-8, alpha: float = 1.0,
                    beta: float = 1.0, nesterov: bool = False,
                    first_step: str = "repeat") -> optax.GradientTransformation:
  r"""Optimistic Adam: optimism applied to Adam's step direction.

  .. math::
    m_t = b_1 m_{t-1} + (1-b_1) d_t,\quad v_t = b_2 v_{t-1} + (1-b_2) d_t^2,\quad
    r_t = \hat m_t / (\sqrt{\hat v_t} + \epsilon),\quad
    u_t = -\eta\big((\alpha+\beta) r_t - \beta r_{t-1}\big).

  Defaults follow Daskalakis et al. (Optimistic Adam for WGAN: b1 = 0.5,
  b2 = 0.9, no Nesterov momentum); optax's ``optimistic_adam_v2`` defaults
  to b1 = 0.9 and ``nesterov=True``. With ``first_step='repeat'`` this is
  ``optax.optimistic_adam_v2`` (used when the installed optax has it).

  Args:
    learning_rate: η, a scalar or an optax schedule.
    b1: first-moment decay.
    b2: second-moment decay.
    eps: added to the root of the second moment.
    alpha: weight of the current step direction.
    beta: weight of the negative momentum.
    nesterov: Nesterov-style first moment in Adam.
    first_step: ``'repeat'`` (r_{-1} = r_0) or ``'zero'`` (r_{-1} = 0).

  Returns:
    An ``optax.GradientTransformation``.

  References:
    Daskalakis et al., "Training GANs with Optimism", ICLR 2018.
  """
  _check_first_step(first_step)
  if first_step == "repeat" and hasattr(optax, "optimistic_adam_v2"):
    return optax.optimistic_adam_v2(learning_rate, alpha=alpha, beta=beta, b1=b1,
                                    b2=b2, eps=eps, nesterov=nesterov)
  return optax.chain(
      optax.scale_by_adam(b1=b1, b2=b2, eps=eps, nesterov=nesterov),
      scale_by_optimistic(alpha, beta, first_step),
      optax.scale_by_learning_rate(learning_rate))


def adam(learning_rate: optax.ScalarOrSchedule, b1: float = 0.5, b2: float = 0.999,
         eps: float = 1e-8) -> optax.GradientTransformation:
  r"""Adam with the usual GAN momentum ``b1 = 0.5`` (Radford et al. 2016).

  .. math::
    u_t = -\eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

  Args:
    learning_rate: η, a scalar or an optax schedule.
    b1: first-moment decay.
    b2: second-moment decay.
    eps: added to the root of the second moment.

  Returns:
    An ``optax.GradientTransformation``.
  """
  return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


# The optimisers by name; "sgd" is an alias of "gda" (plain descent on each player's own loss).
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "gda": gda, "sgd": gda, "ogda": ogda, "optimistic_adam": optimistic_adam, "adam": adam}


def _check_first_step(first_step, key: str = "first_step"):
  if first_step not in FIRST_STEPS:
    raise InvalidArgumentError(f"{key}={first_step!r} is not allowed; "
                      f"allowed: {', '.join(FIRST_STEPS)}.")


def check_learning_rate(learning_rate: Any, key: str = "learning_rate"):
  """Raises InvalidArgumentError unless ``learning_rate`` is a positive finite number or a schedule."""
  if callable(learning_rate):
    return learning_rate
  if (isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real)
      or not 0 < float(learning_rate) < float("inf")):
    raise InvalidArgumentError(f"{key}={learning_rate!r} is not allowed; expected a positive "
                      "finite number or an optax schedule.")
  return learning_rate


def make(name: str, learning_rate: optax.ScalarOrSchedule, key: str = "optimizer",
         **kwargs) -> optax.GradientTransformation:
  """Builds the optimiser ``name`` from config values, refusing bad ones.

  Args:
    name: a name in :data:`OPTIMIZERS` ('gda', 'sgd', 'ogda', 'optimistic_adam', 'adam').
    learning_rate: a positive number or an optax schedule.
    key: the config key ``name`` came from; errors name it (``key.learning_rate``
      for the learning rate, ``key.<kwarg>`` for options).
    **kwargs: options of the factory (e.g. ``alpha``, ``beta``, ``first_step``, ``b1``).

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    InvalidArgumentError: unknown name, non-positive learning rate or unknown option.

  >>> make('ogda', 0.01)  # doctest: +ELLIPSIS
  GradientTransformation...
  >>> make('adamw', 0.01)
  Traceback (most recent call last):
  ...
  ebm_gan.errors.InvalidArgumentError: optimizer='adamw' is not a known optimizer; allowed: adam, gda, ogda, optimistic_adam, sgd.
  """
  factory = lookup(OPTIMIZERS, name, key, "optimizer")
  check_learning_rate(learning_rate, f"{key}.learning_rate")
  allowed = [p for p in inspect.signature(factory).parameters if p != "learning_rate"]
  unknown = sorted(set(kwargs) - set(allowed))
  if unknown:
    raise InvalidArgumentError(f"{key}.{unknown[0]}={kwargs[unknown[0]]!r} is not an option of "
                      f"optimizer {name!r}; allowed: {', '.join(allowed) or 'none'}.")
  if "first_step" in kwargs:
    _check_first_step(kwargs["first_step"], f"{key}.first_step")
  return factory(learning_rate, **kwargs)


class PerPlayer(Mapping[str, optax.GradientTransformation]):
  """An immutable mapping player -> optax transform (two-timescale updates).

  Each player is updated by its own transform with its own state; e.g. a
  critic 4x faster than the generator::

    tx = per_player({'energy': ogda(4e-4), 'generator': ogda(1e-4)})
  """

  __slots__ = ("_txs",)

  def __init__(self, transforms: Mapping[str, optax.GradientTransformation]):
    for name, tx in transforms.items():
      if not isinstance(name, str):
        raise InvalidArgumentError(f"per_player: player names must be strings, got {name!r}.")
      if not isinstance(tx, optax.GradientTransformation):
        raise InvalidArgumentError(f"per_player: the transform of player {name!r} is "
                          f"{type(tx).__name__}, not an optax.GradientTransformation.")
    if not transforms:
      raise InvalidArgumentError("per_player: needs at least one player.")
    object.__setattr__(self, "_txs", types.MappingProxyType(dict(transforms)))

  def __setattr__(self, name, value):
    raise AttributeError("PerPlayer is immutable")

  def __getitem__(self, player: str) -> optax.GradientTransformation:
    return self._txs[player]

  def __iter__(self) -> Iterator[str]:
    return iter(self._txs)

  def __len__(self) -> int:
    return len(self._txs)

  def __hash__(self):
    return hash(tuple(self._txs.items()))

  def __repr__(self):
    return f"PerPlayer({sorted(self._txs)})"


def per_player(transforms: Mapping[str, optax.GradientTransformation]) -> PerPlayer:
  """Returns an immutable player -> transform mapping (see :class:`PerPlayer`).

  With learning rates η_i per player the scheme steps ``θ_i ← θ_i + T_i(d_i)``:
  the two-timescale rule of Heusel et al. (2017) is ``η_critic > η_generator``.
  """
  return PerPlayer(transforms)


def player_transforms(tx: optax.GradientTransformation | Mapping[str, optax.GradientTransformation],
                      players: Sequence[str]) -> dict[str, optax.GradientTransformation]:
  """Expands ``tx`` to one transform per player, for :func:`ebm_gan.schemes.make_update`.

  Args:
    tx: a single transform (used by every player, each with its own state) or a
      :class:`PerPlayer` mapping that must cover exactly ``players``.
    players: the players of the game, in update order.

  Returns:
    ``{player: transform}`` in the order of ``players``.

  Raises:
    InvalidArgumentError: a mapping that misses a player or names one the game lacks.
  """
  players = list(players)
  if isinstance(tx, optax.GradientTransformation):
    return {p: tx for p in players}
  if isinstance(tx, Mapping):
    missing = [p for p in players if p not in tx]
    extra = [p for p in tx if p not in players]
    if missing or extra:
      raise InvalidArgumentError(
          f"per-player optimizer players {sorted(tx)} do not match the game's players "
          f"{players} (missing: {missing}, unknown: {extra}).")
    return {p: tx[p] for p in players}
  raise InvalidArgumentError(f"optimizer must be an optax.GradientTransformation or a per_player "
                    f"mapping, got {type(tx).__name__}.")

"""Training state, the train step and many-steps-per-dispatch chunks.

One step of a game: every player's direction from the game's single
``value_and_directions`` call, combined by an update scheme (simultaneous,
alternating, extragradient; :mod:`ebm_gan.schemes`) with per-player optax
transforms. The step is pure and carries no mapping code: with ``axis_name``
set it averages directions and metrics with ``lax.pmean`` so callers can
map it over devices (:mod:`ebm_gan.parallel`).

Randomness is a function of (state.key, state.step) only, so a run resumed
from a checkpoint replays exactly the same data and noise.
"""

from __future__ import annotations

import inspect
from typing import Callable

import flax
import jax
import jax.numpy as jnp
import optax

from ebm_gan import protocol
from ebm_gan import optim
from ebm_gan import parallel
from ebm_gan import schemes

_STEP_STREAM, _DATA_STREAM = 0, 1


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue: a pytree, so it jits, maps over devices and checkpoints.

  Attributes:
    step: int32 scalar, the number of completed steps.
    params: player name → parameters.
    opt_states: player name → that player's optimiser state.
    key: the run's root PRNG key (raw uint32[2]); step keys are folded from it.
    ema: player name → exponential moving average of its parameters (None when off;
      see :func:`update_ema`).
  """
  step: jax.Array
  params: dict
  opt_states: dict
  key: jax.Array
  ema: dict | None = None


def init_state(game, tx, key: jax.Array, x_example: jax.Array, ema: bool = False) -> TrainState:
  """Initialises parameters (from ``x_example``) and each player's optimiser state.

  Args:
    game: an ``EBMGame``/``GANGame`` (anything with ``players`` and ``init``).
    tx: one optax transform for every player, or ``optim.per_player({...})``.
    key: a raw PRNG key (``jax.random.PRNGKey(seed)``).
    x_example: a data batch [B, ...] fixing shapes.
    ema: keep a moving average of the parameters (it starts at the initial ones).
  """
  protocol.check_game(game, ("players", "init"), "ebm_gan.train.init_state")
  txs = optim.player_transforms(tx, game.players)
  init_key, run_key = jax.random.split(key)
  params = game.init(init_key, x_example)
  opt_states = {p: txs[p].init(params[p]) for p in game.players}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_states=opt_states,
                    key=run_key, ema=params if ema else None)


def update_ema(ema: dict, params: dict, decay: float) -> dict:
  r"""One step of the parameters' exponential moving average (docs/theory.md §7.4).

  .. math::  \bar\theta_{t+1} = \delta\, \bar\theta_t + (1 - \delta)\, \theta_{t+1}

  Iterate averaging is what the linear theory of the game optimisers favours: the
  iterates of GDA/OGDA rotate around (or hover near) the equilibrium, and their
  average is closer to it than any one iterate. ``δ`` = ``decay`` ∈ [0, 1) sets the
  averaging window, about 1/(1 − δ) steps.
  """
  return optax.incremental_update(params, ema, step_size=1.0 - decay)


def _l2(tree) -> jax.Array:
  return optax.tree_utils.tree_norm(tree)


def make_train_step(game, tx, scheme: str = "simultaneous", *, critic_steps: int = 1,
                    axis_name: str | None = None, ema_decay: float = 0.0,
                    penalty_schedule: Callable | None = None
                    ) -> Callable[[TrainState, jax.Array], tuple]:
  """Returns a pure ``step(state, batch) -> (state, metrics)``.

  Each player i has the gradient d_i of its own loss (−∇_m L1 for the
  energy, −∇_f L2 for the generator; docs/theory.md (3.7)–(3.8)) through its optax transform T_i:
  θ_i ← θ_i + T_i(d_i), combined across players by ``scheme``.

  Args:
    game: the game (``value_and_directions(params, batch, key)``, ``players``); when
      ``value_and_directions`` also takes ``players=`` (:class:`ebm_gan.EBMGame`,
      ``GANGame``), an alternating sub-step asks for the moving group's directions only.
    tx: one optax transform for all players or ``optim.per_player({...})``.
    scheme: 'simultaneous', 'alternating' or 'extragradient'.
    critic_steps: critic sub-steps per generator step ('alternating' only).
    axis_name: when set, directions and metrics are ``lax.pmean``-ed over it,
      and each device draws different noise (its axis index is folded in).
    ema_decay: δ of the parameters' moving average (:func:`update_ema`), updated
      after every step when the state carries one (``init_state(..., ema=True)``).
    penalty_schedule: ``step -> s_t``, the factor of the game's penalty weight at step t
      (an annealed R1 weight γ_t = γ s_t, docs/theory.md (6.10)); None: always 1.

  Returns:
    ``step``; metrics hold the game's value dict (l1, l3, entropy, per-player
    losses, …) at θ_t and per-player ``grad_norm/…``, ``param_norm/…`` and
    ``update_norm/…``. Alternating, with a game that takes ``players=``: each
    player's loss, metrics and ``grad_norm`` at its group's first sub-step (the
    critics' at θ_t, the generator's after the critic steps), so that a sub-step
    computes only what its moving players need.
  """
  protocol.check_game(game, ("players", "critics", "value_and_directions"),
                     "ebm_gan.train.make_train_step")
  txs = optim.player_transforms(tx, game.players)
  restrict = _takes_players(game.value_and_directions)
  if restrict and scheme == "alternating":
    protocol.check_game(game, ("summarise",), "an alternating step of a game taking players=")

  def step(state: TrainState, batch: jax.Array):
    key = jax.random.fold_in(jax.random.fold_in(state.key, _STEP_STREAM), state.step)
    if axis_name is not None:
      key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))

    options = {} if penalty_schedule is None else {"penalty_scale": penalty_schedule(state.step)}
    directions_fn = _directions_fn(game, batch, options, axis_name)
    update = schemes.make_update(directions_fn, txs, scheme, critics=game.critics,
                                 critic_steps=critic_steps, restrict_players=restrict)
    params, opt_states, metrics, updates = update(state.params, state.opt_states, key)
    metrics = game.summarise(metrics) if restrict and scheme == "alternating" else dict(metrics)
    for p in game.players:
      metrics[f"param_norm/{p}"] = _l2(params[p])
      metrics[f"update_norm/{p}"] = _l2(updates[p])
    new_state = state.replace(step=state.step + 1, params=params, opt_states=opt_states)
    if state.ema is not None:
      new_state = new_state.replace(ema=update_ema(state.ema, params, ema_decay))
    return new_state, metrics

  return step


def _directions_fn(game, batch, options: dict, axis_name: str | None):
  """``(params, key, players=None) -> (directions, value)`` for :mod:`ebm_gan.schemes`: the
  game's directions on ``batch`` (averaged over ``axis_name``), with each one's norm in the
  value; ``players`` (an alternating sub-step) asks for the moving players' losses only."""
  def directions_fn(params, k, players=None):
    now = options if players is None else dict(options, players=players)
    value, directions = game.value_and_directions(params, batch, k, **now)
    if axis_name is not None:
      value, directions = jax.lax.pmean((value, directions), axis_name)
    value = dict(value, **{f"grad_norm/{p}": _l2(d) for p, d in directions.items()})
    return directions, value
  return directions_fn


def _takes_players(value_and_directions) -> bool:
  """Whether a game's ``value_and_directions`` accepts ``players=`` (EBMGame, GANGame do)."""
  try:
    return "players" in inspect.signature(value_and_directions).parameters
  except (TypeError, ValueError):
    return False


def data_key(state: TrainState) -> jax.Array:
  """The key of the data batch of step ``state.step`` (independent of the step's noise)."""
  return jax.random.fold_in(jax.random.fold_in(state.key, _DATA_STREAM), state.step)


def make_chunk(step, num_steps: int, sampler: Callable[[jax.Array, int], jax.Array] | None = None,
               batch_size: int | None = None, axis_name: str | None = None,
               unroll: int | bool = 1):
  """``num_steps`` train steps in one ``lax.scan`` (one dispatch, no Python per step).

  Args:
    step: a train step ``(state, batch) -> (state, metrics)``.
    num_steps: steps per chunk.
    sampler: a jittable ``sampler(key, n) -> batch``; batches are then drawn
      inside the scan from ``data_key(state)``, so ``chunk(state)`` takes no data.
      Without a sampler, ``chunk(state, batches)`` scans over ``batches[num_steps, B, ...]``.
    batch_size: the batch of one step; under a device axis, of ONE device.
    axis_name: under a device axis (``ebm_gan.parallel.data_parallel``), every
      device draws the global batch of ``batch_size × devices`` samples from the
      step's data key — the very batch a one-device run of the same global size
      draws — and keeps its own slice of it, so the data does not depend on the
      number of devices.

  Returns:
    ``chunk(state[, batches]) -> (state, metrics)`` with metrics stacked [num_steps].
  """
  if sampler is not None:
    def body(state, _):
      return step(state, _batch(sampler, data_key(state), batch_size, axis_name))

    def chunk(state):
      return _scan(body, state, None, num_steps, unroll)
  else:
    def chunk(state, batches):
      return _scan(step, state, batches, len(jax.tree.leaves(batches)[0]), unroll)
  return chunk


def _scan(body, state, xs, length: int, unroll):
  """``lax.scan(body, state, xs, length)``; with ``unroll=True`` the steps written out in Python
  (no loop in the program), the outputs stacked along a new leading axis as scan stacks them."""
  if unroll is not True:
    return jax.lax.scan(body, state, xs, length=length, unroll=unroll)
  rows = []
  for i in range(length):
    state, out = body(state, None if xs is None else jax.tree.map(lambda x: x[i], xs))
    rows.append(out)
  return state, jax.tree.map(lambda *r: jnp.stack(r), *rows)


def _batch(sampler, key, batch_size, axis_name):
  """The step's batch: all of it, or under ``axis_name`` this device's slice of the global one."""
  if axis_name is None:  # split over the devices when run over a global batch (ebm_gan.parallel)
    return parallel.shard_batch(sampler(key, batch_size))
  devices = jax.lax.axis_size(axis_name)
  full = sampler(key, batch_size * devices)
  start = jax.lax.axis_index(axis_name) * batch_size
  return jax.lax.dynamic_slice_in_dim(full, start, batch_size)

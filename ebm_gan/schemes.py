"""Update schemes for n-player games: simultaneous, alternating, extragradient.

A game is seen here only through its *directions function*
``directions_fn(params, key) -> (directions, aux)`` where ``params`` and
``directions`` are dicts keyed by player and every direction is the gradient
of that player's own loss (see :func:`ebm_gan.game.joint_directions`).
Each player has its own optax transform and state, so players can use
different optimisers and learning rates (two-timescale updates).

With per-player transforms T_i (update u = T_i(d), θ ← θ + u):

* simultaneous:  d = D(θ_t);  θ_{t+1,i} = θ_{t,i} + T_i(d_i)            (all at once)
* alternating:   players step in turn, each at the point the previous ones left;
                 the critic players step ``critic_steps`` times per round.
* extragradient: d = D(θ_t); θ_½ = θ_t + T(d) (state discarded);
                 d' = D(θ_½);  θ_{t+1} = θ_t + T(d') (state kept).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from ebm_gan.errors import InvalidArgumentError, lookup

Params = Mapping[str, Any]
DirectionsFn = Callable[[Params, jax.Array], tuple[dict, Any]]



def _step_players(players, params, opt_states, directions, txs):
  """Applies each listed player's transform to its direction; returns new dicts."""
  params, opt_states, updates = dict(params), dict(opt_states), {}
  for p in players:
    u, opt_states[p] = txs[p].update(directions[p], opt_states[p], params[p])
    params[p] = optax.apply_updates(params[p], u)
    updates[p] = u
  return params, opt_states, updates


def alternating_order(players: Sequence[str], critics: Sequence[str],
                      critic_steps: int) -> list[tuple[str, ...]]:
  """The sub-steps of one alternating round: critics ``critic_steps`` times, then the rest.

  >>> alternating_order(['energy', 'generator'], ['energy'], 2)
  [('energy',), ('energy',), ('generator',)]
  """
  unknown = [c for c in critics if c not in players]
  if unknown:
    raise InvalidArgumentError(f"critic players {unknown} are not players of the game {list(players)}")
  rest = tuple(p for p in players if p not in critics)
  order = [tuple(critics)] * critic_steps if critics else []
  return order + ([rest] if rest else [])


def _simultaneous(directions_fn, txs, players, critics, critic_steps, restrict):
  del critics, critic_steps, restrict

  def update(params, opt_states, key):
    d, aux = directions_fn(params, key)
    params, opt_states, updates = _step_players(players, params, opt_states, d, txs)
    return params, opt_states, aux, updates
  return update


def _alternating(directions_fn, txs, players, critics, critic_steps, restrict):
  order = alternating_order(players, [c for c in critics if c in players], critic_steps)

  def update(params, opt_states, key):
    updates, first_aux = {}, None
    for i, group in enumerate(order):
      k = jax.random.fold_in(key, i)
      d, aux = directions_fn(params, k, group) if restrict else directions_fn(params, k)
      # The round's metrics are the first evaluation's (at θ_t); a key it lacks (with
      # restricted sub-steps: the later groups' losses and directions' norms) comes from
      # the first sub-step that has it. Other later metrics are never read (XLA drops them).
      first_aux = dict(aux) if first_aux is None else {**aux, **first_aux}
      params, opt_states, u = _step_players(group, params, opt_states, d, txs)
      for p, up in u.items():  # a critic's round update is the sum of its sub-steps
        updates[p] = up if p not in updates else jax.tree.map(jnp.add, updates[p], up)
    return params, opt_states, first_aux, updates
  return update


def _extragradient(directions_fn, txs, players, critics, critic_steps, restrict):
  del critics, critic_steps, restrict

  def update(params, opt_states, key):
    k0, k1 = jax.random.split(key)
    d0, aux = directions_fn(params, k0)
    look_ahead, _, _ = _step_players(players, params, opt_states, d0, txs)
    d1, _ = directions_fn(look_ahead, k1)
    params, opt_states, updates = _step_players(players, params, opt_states, d1, txs)
    return params, opt_states, aux, updates
  return update


# The update schemes by name: each builds ``update(params, opt_states, key)``.
SCHEMES: dict[str, Callable] = {
    "simultaneous": _simultaneous, "alternating": _alternating, "extragradient": _extragradient}


def make_update(directions_fn: DirectionsFn,
                txs: Mapping[str, optax.GradientTransformation],
                scheme: str = "simultaneous",
                *,
                critics: Sequence[str] = ("energy",),
                critic_steps: int = 1,
                restrict_players: bool = False):
  """Builds ``update(params, opt_states, key) -> (params, opt_states, aux, updates)``.

  The update rules are those of docs/theory.md §7 (simultaneous, alternating,
  extragradient).

  Args:
    directions_fn: ``(params, key) -> (directions, aux)``, each player's gradient of its own loss.
    txs: an optax transform per player (the keys are the players).
    scheme: 'simultaneous', 'alternating' or 'extragradient'.
    critics: for 'alternating', the players that move first (``critic_steps`` times).
      Names that are not players are ignored, so one default serves every game.
    critic_steps: for 'alternating', critic sub-steps per round (k in WGAN).
    restrict_players: for 'alternating', call ``directions_fn(params, key, group)``
      so that a sub-step differentiates only the moving group's losses (only the
      moving players pay); the directions function must then accept that third
      argument and return directions for at least the group.

  Returns:
    A pure function; ``aux`` is the directions function's aux at the round's
    first evaluation (the point θ_t), ``updates`` each player's total change of
    parameters over the round (θ_{t+1} − θ_t).
    The directions function is called once (simultaneous), twice
    (extragradient) or ``critic_steps + 1`` times (alternating, 2 players) per
    round, each with its own key folded from ``key``.

  Raises:
    InvalidArgumentError: an unknown scheme, or critics that are not players.
  """
  build = lookup(SCHEMES, scheme, "scheme", "update scheme")
  return build(directions_fn, txs, list(txs), critics, critic_steps, restrict_players)

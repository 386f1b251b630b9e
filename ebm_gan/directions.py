"""Every player's gradient of its own loss from ONE ``jax.grad`` (docs/theory.md §8).

Each player i minimises its own loss ℓ_i(θ_i, θ_{−i}). With sg the stop-gradient,

    ∇_θ Σ_j ℓ_j(θ_j, sg(θ_{−j}))  restricted to θ_i  =  ∇_{θ_i} ℓ_i(θ_i, θ_{−i}),

because in ℓ_j (j ≠ i) player i's parameters are constants. So one backward pass over
the summed losses returns every player's own gradient, for any n-player game.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax

Params = dict[str, Any]


def joint_directions(losses: Mapping[str, Callable[..., Any]], params: Params,
                     has_aux: bool = False, *, players=None, shared=None):
  """Every player's gradient of its own loss, in one ``jax.grad`` (docs/theory.md (8.1)).

  .. math::  d_i = ∇_{θ_i} ℓ_i(θ_i, θ_{−i})
             = [∇_θ Σ_j ℓ_j(θ_j, \\mathrm{sg}(θ_{−j}))]_i

  Args:
    losses: player name → ``loss(params) -> scalar`` (or ``(scalar, aux)`` when
      ``has_aux``); each is called with a view of ``params`` in which every
      other player's entry is under ``stop_gradient``.
    params: player name → parameter pytree (players without a loss get a zero
      direction).
    has_aux: whether the losses return ``(value, aux)``.
    players: the moving players (default: every player with a loss): only their
      losses are evaluated and differentiated; the others get zero directions
      and no value.
    shared: owner player → ``fn(params) -> value``, a quantity several losses read
      (the generator's sample). It is evaluated ONCE, on the owner's view, and
      every loss is then called as ``loss(view, values)`` with ``values[owner]``
      live in the owner's loss and under ``stop_gradient`` in every other one —
      the same gradients as each loss recomputing it on its own view, provided
      ``fn`` reads only the owner's parameters, without relying on XLA to merge
      the repeated forward passes (it does not inside ``lax.scan``).

  Returns:
    ``(values, directions, aux)``: per-player loss values, per-player
    directions (gradients of their own losses) (same structure as ``params``), per-player aux ({} without aux).

  Note:
    Reverse mode only. ``stop_gradient`` also blocks forward-mode tangents, so
    ``jax.jacfwd``/``jvp`` of the directions lose the cross terms ∂d_i/∂θ_j;
    for the game Jacobian (eigenvalue analysis, consensus optimisation)
    differentiate each player's own ``jax.grad`` instead, as
    ``ebm_gan.games.theory.numerical_jacobian`` does.
  """
  missing = [p for p in (*losses, *(shared or {})) if p not in params]
  if missing:
    raise KeyError(f"losses name players {missing} that have no params {list(params)}")
  moving = set(losses if players is None else players)
  unknown = moving - set(losses)
  if unknown:
    raise KeyError(f"moving players {sorted(unknown)} have no loss among {list(losses)}")

  def total(p):
    owned = {o: fn(_view(p, {o} & moving)) for o, fn in (shared or {}).items()}
    values, auxes, acc = {}, {}, 0.0
    for name in (n for n in losses if n in moving):
      view = _view(p, {name})
      out = losses[name](view) if shared is None else losses[name](view, _view(owned, {name}))
      values[name], auxes[name] = out if has_aux else (out, None)
      acc = acc + values[name]
    return acc, (values, auxes)

  directions, (values, auxes) = jax.grad(total, has_aux=True)(params)
  return values, directions, (auxes if has_aux else {})


def _view(tree: Mapping[str, Any], live) -> dict:
  """The dict with every entry not named in ``live`` under ``stop_gradient``."""
  return {k: v if k in live else jax.lax.stop_gradient(v) for k, v in tree.items()}

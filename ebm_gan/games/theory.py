"""The linear theory of game optimisers at an equilibrium (docs/theory.md §7).

Near an equilibrium θ* the direction field is ``d(θ) ≈ J (θ - θ*)``. Every
optimiser/scheme pair built from GDA or OGDA is then a linear map on the
state ``z = (e, p)`` (``e = θ - θ*``, ``p`` the stored previous direction),
and its spectral radius ρ is the asymptotic distance contraction per step
(docs/theory.md §7). With per-coordinate learning rates ``H = diag(η)`` and the
optimiser written as ``u = -H(a d - b p)``, ``p' = d`` (GDA: a=1, b=0; OGDA:
a = α+β, b = β):

* simultaneous:  ``Z = [[I - aHJ, bH], [J, 0]]``
* alternating:   ``Z = Z_G_last ⋯ Z_G_first`` with, for the players G (mask
  ``Π_G``), ``Z_G = [[I - aΠ_G H J, bΠ_G H], [Π_G J, I - Π_G]]``
* extragradient: with ``L = [I - aHJ, bH]`` (the look-ahead ``e_½ = L z``),
  ``e' = e - H(a J L z - b p)`` and ``p' = J L z``.

One step is one call of the scheme's ``update`` (an alternating round of
``critic_steps`` critic sub-steps and one generator sub-step; an
extragradient step uses two direction evaluations). Adam-type optimisers have
no linearisation at θ* (their normalisation d/√v is not differentiable at
d = 0); their theoretical rate is reported as NaN.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
from jax.flatten_util import ravel_pytree
import numpy as np

from ebm_gan.errors import InvalidArgumentError, lookup

LINEAR_OPTIMIZERS = ("gda", "sgd", "ogda")


def coordinate_vector(game, per_player: Mapping[str, float]) -> np.ndarray:
  """Broadcasts one number per player onto the raveled coordinates of θ."""
  tree = {p: np.full(np.shape(v), per_player[p], np.float64)
          for p, v in game.equilibrium().items()}
  # the leaf order of ravel_pytree, kept in float64 (ravel_pytree would cast to float32)
  return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def player_learning_rates(game, learning_rate: float, critic_lr_ratio: float = 1.0):
  """η per player: critics get ``critic_lr_ratio · η`` (two-timescale)."""
  return {p: learning_rate * (critic_lr_ratio if p in game.critics else 1.0)
          for p in game.players}


def linearised_map(game, optimizer: str, scheme: str, learning_rate: float, *,
                   critic_lr_ratio: float = 1.0, critic_steps: int = 1,
                   alpha: float = 1.0, beta: float = 1.0) -> np.ndarray:
  """The linear map ``z_{t+1} = M z_t`` of one update at θ*, on ``z = (e, p)``.

  See the module docstring for the formulas. ``e`` is θ − θ* (raveled, sorted
  player order) and ``p`` the stored previous direction (unused by GDA, which
  only adds zero eigenvalues).

  Args:
    game: a game of :mod:`ebm_gan.games.toy`.
    optimizer: 'gda' (or 'sgd') or 'ogda'.
    scheme: 'simultaneous', 'alternating' or 'extragradient'.
    learning_rate: η (the generator's; critics use ``critic_lr_ratio · η``).
    critic_lr_ratio: two-timescale ratio η_critic / η.
    critic_steps: critic sub-steps per alternating round.
    alpha: OGDA's α.
    beta: OGDA's β.

  Returns:
    The (2n, 2n) float64 matrix M.
  """
  if optimizer not in LINEAR_OPTIMIZERS:
    raise InvalidArgumentError(f"optimizer={optimizer!r} has no linearisation at the equilibrium; "
                      f"allowed: {', '.join(LINEAR_OPTIMIZERS)}.")
  a, b = (alpha + beta, beta) if optimizer == "ogda" else (1.0, 0.0)
  J = game.jacobian()
  H = np.diag(coordinate_vector(
      game, player_learning_rates(game, learning_rate, critic_lr_ratio)))
  build = lookup(_LINEAR_MAPS, scheme, "scheme", "update scheme")
  return build(game, J, H, a, b, critic_steps)


def _simultaneous_map(game, J, H, a, b, critic_steps):
  del game, critic_steps
  n = J.shape[0]
  I, O = np.eye(n), np.zeros((n, n))
  return np.block([[I - a * H @ J, b * H], [J, O]])


def _extragradient_map(game, J, H, a, b, critic_steps):
  del game, critic_steps
  I = np.eye(J.shape[0])
  L = np.hstack([I - a * H @ J, b * H])
  e_new = np.hstack([I, b * H]) - a * H @ J @ L
  return np.vstack([e_new, J @ L])


def _alternating_map(game, J, H, a, b, critic_steps):
  n = J.shape[0]
  I = np.eye(n)
  order = [list(game.critics)] * critic_steps + [
      [p for p in game.players if p not in game.critics]]
  M = np.eye(2 * n)
  for group in order:
    G = np.diag(coordinate_vector(game, {p: float(p in group) for p in game.players}))
    Z = np.block([[I - a * G @ H @ J, b * G @ H], [G @ J, I - G]])
    M = Z @ M
  return M


# The linearised map of each update scheme (docs/theory.md §7).
_LINEAR_MAPS = {"simultaneous": _simultaneous_map, "extragradient": _extragradient_map,
                "alternating": _alternating_map}


def spectral_radius(game, M: np.ndarray) -> float:
  """max |λ(M)| on the invariant subspace (range Jᵀ)² that carries the distance.

  When M does not read the stored direction p (GDA), M is block lower
  triangular with a zero p-block, and ρ(M) = ρ(M_ee) is computed on the
  e-block alone (better conditioned than the 2n × 2n eigenproblem).
  """
  n = M.shape[0] // 2
  basis = game.invariant_basis()
  if not M[:n, n:].any():  # GDA never reads p; the p-block of M is 0
    M, blocks = M[:n, :n], 1
  else:
    blocks = 2
  if basis is not None:
    B = np.kron(np.eye(blocks), basis)
    M = B.T @ M @ B
  return float(np.abs(np.linalg.eigvals(M)).max())


def theoretical_rate(game, optimizer: str, scheme: str, learning_rate: float,
                     **kwargs: Any) -> float:
  """ρ(M): the asymptotic per-step factor of ‖θ_t − θ*‖ (NaN for Adam-type optimisers).

  ``kwargs`` are those of :func:`linearised_map`.
  """
  if optimizer not in LINEAR_OPTIMIZERS:
    return float("nan")
  return spectral_radius(game, linearised_map(game, optimizer, scheme, learning_rate, **kwargs))


def numerical_jacobian(game) -> np.ndarray:
  """∂d/∂θ at θ* by ``jax.jacfwd`` (float32): an independent check of :meth:`jacobian`.

  Each direction is ``∇_{θ_i} ℓ_i`` by its own ``jax.grad`` (no stop_gradient:
  forward-mode tangents do not pass a stop_gradient, so differentiating
  :func:`ebm_gan.game.joint_directions` would drop the cross terms ∂d_i/∂θ_j).
  """
  star = game.equilibrium()
  flat, unravel = ravel_pytree(star)
  losses = game.losses()

  def field(v):
    params = unravel(v)
    d = {i: jax.grad(lambda th, i=i: losses[i]({**params, i: th}))(params[i])
         for i in params}
    return ravel_pytree(d)[0]

  return np.asarray(jax.jacfwd(field)(flat), np.float64)

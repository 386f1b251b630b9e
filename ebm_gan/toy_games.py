"""Toy games with known equilibria and their linearised update maps.

Each game is seen by the schemes of :mod:`ebm_gan.schemes` through
``directions_fn(params, key) -> (directions, values)``: ``params`` is a dict
keyed by player and every direction is the gradient of that player's *own*
loss (a maximiser minimises the negated objective), computed with
:func:`ebm_gan.game.joint_directions`.

Near an equilibrium θ* the direction field is ``d(θ) ≈ J (θ - θ*)``. Every
optimiser/scheme pair built from GDA or OGDA is then a linear map on the
state ``z = (e, p)`` (``e = θ - θ*``, ``p`` the stored previous direction),
and its spectral radius ρ is the asymptotic distance contraction per step
(MATH.md §7). With per-coordinate learning rates ``H = diag(η)`` and the
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
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

from ebm_gan import game as game_lib
from ebm_gan.registry import ConfigError, Registry, check_positive

LINEAR_OPTIMIZERS = ("gda", "sgd", "ogda")
_EPS32 = float(np.finfo(np.float32).eps)


def _vector(v, size, key):
  v = np.zeros(size) if v is None else np.asarray(v, dtype=np.float64)
  if v.shape != (size,):
    raise ConfigError(f"{key}={v.tolist()!r} has shape {v.shape}; the game needs shape ({size},).")
  return v


class _Game:
  """What every toy game shares: its theory, by the module-level functions below."""

  def linearised_map(self, optimizer: str, scheme: str, learning_rate: float, **kwargs):
    """:func:`linearised_map` of this game (the update map at θ*)."""
    return linearised_map(self, optimizer, scheme, learning_rate, **kwargs)

  def theoretical_rate(self, optimizer: str, scheme: str, learning_rate: float, **kwargs):
    """:func:`theoretical_rate` of this game (ρ of the update map at θ*)."""
    return theoretical_rate(self, optimizer, scheme, learning_rate, **kwargs)


class LinearGame(_Game):
  r"""min_x max_y  f(x, y) = ½xᵀPx + xᵀAy − ½yᵀQy + bᵀx + cᵀy.

  Player 'x' minimises f, player 'y' minimises −f, so the descent directions
  are ``d_x = Px + Ay + b`` and ``d_y = Qy − Aᵀx − c`` and the Jacobian is
  ``J = [[P, A], [−Aᵀ, Q]]``. The equilibria solve ``∇f = 0``; when J is
  singular (bilinear game with a rank-deficient or rectangular A) they form an
  affine set, θ* is its minimum-norm point and the distance is measured
  orthogonally to the set (on range Jᵀ; the kernel components never move).
  That range is invariant under every scheme when range J = range Jᵀ, which
  holds for the bilinear game (J skew) and whenever J is invertible (e.g. the
  strongly-convex–strongly-concave game).
  """

  players = ("x", "y")
  critics = ("y",)
  plane_labels = ("x[0]", "y[0]")

  def __init__(self, A, P=None, Q=None, b=None, c=None, name="quadratic"):
    A = np.asarray(A, dtype=np.float64)
    A = A.reshape(1, 1) if A.ndim == 0 else A
    if A.ndim != 2:
      raise ConfigError(f"A={A.tolist()!r} has shape {A.shape}; expected a matrix of shape "
                        "(dim_x, dim_y).")
    m, n = A.shape
    P = np.zeros((m, m)) if P is None else np.asarray(P, dtype=np.float64)
    Q = np.zeros((n, n)) if Q is None else np.asarray(Q, dtype=np.float64)
    if P.shape != (m, m):
      raise ConfigError(f"P has shape {P.shape}; with A of shape {A.shape} it must be ({m}, {m}).")
    if Q.shape != (n, n):
      raise ConfigError(f"Q has shape {Q.shape}; with A of shape {A.shape} it must be ({n}, {n}).")
    self.name = name
    self.A, self.P, self.Q = A, P, Q
    self.b, self.c = _vector(b, m, "b"), _vector(c, n, "c")
    self.dims = (m, n)
    self._J = np.block([[P, A], [-A.T, Q]])
    grad_matrix = np.block([[P, A], [A.T, -Q]])
    rhs = -np.concatenate([self.b, self.c])
    z, *_ = np.linalg.lstsq(grad_matrix, rhs, rcond=None)
    if not np.allclose(grad_matrix @ z, rhs, atol=1e-8 * (1 + np.abs(rhs).max())):
      raise ConfigError("the game has no equilibrium: (b, c) is not in the range of "
                        "[[P, A], [Aᵀ, -Q]] (for a bilinear game: b ∉ range A or c ∉ range Aᵀ).")
    self._star = z
    _, s, vt = np.linalg.svd(self._J)
    rank = int((s > 1e-10 * max(s.max(), 1e-300)).sum())
    self._basis = None if rank == m + n else vt[:rank].T  # orthonormal basis of range Jᵀ
    self._proj = None if self._basis is None else jnp.asarray(
        self._basis @ self._basis.T, jnp.float32)

  def losses(self):
    """Player -> loss(params): ``{'x': f, 'y': -f}``."""
    A, P, Q, b, c = (jnp.asarray(v, jnp.float32) for v in (self.A, self.P, self.Q, self.b, self.c))

    def f(p):
      x, y = p["x"], p["y"]
      return 0.5 * x @ P @ x + x @ A @ y - 0.5 * y @ Q @ y + b @ x + c @ y

    return {"x": f, "y": lambda p: -f(p)}

  def directions_fn(self, params, key=None):
    """``(params, key) -> (directions, values)`` by one joint ``jax.grad``."""
    del key
    values, directions, _ = game_lib.joint_directions(self.losses(), params)
    return directions, values

  def equilibrium(self):
    """θ*: the (minimum-norm) solution of ∇f(x, y) = 0, as a params dict."""
    m = self.dims[0]
    return {"x": jnp.asarray(self._star[:m], jnp.float32),
            "y": jnp.asarray(self._star[m:], jnp.float32)}

  def jacobian(self) -> np.ndarray:
    """``J = ∂d/∂θ = [[P, A], [−Aᵀ, Q]]`` (float64), coordinates ordered x then y."""
    return self._J

  def invariant_basis(self):
    """An orthonormal basis of range Jᵀ (None when J is invertible)."""
    return self._basis

  def _error(self, params):
    e = ravel_pytree(params)[0] - ravel_pytree(self.equilibrium())[0]
    return e if self._proj is None else self._proj @ e

  def distance(self, params):
    """‖Π(θ − θ*)‖: the distance to the set of equilibria."""
    return jnp.linalg.norm(self._error(params))

  def distance_floor(self) -> float:
    """Distances below this are float32 round-off of θ ≈ θ* (not dynamics)."""
    return 1e-30 + 1e3 * _EPS32 * float(np.abs(self._star).max(initial=0.0))

  def init(self, key, radius=1.0):
    """θ* + radius · u with u uniform on the unit sphere of range Jᵀ."""
    size = sum(self.dims)
    basis = np.eye(size) if self._basis is None else self._basis
    u = jax.random.normal(key, (basis.shape[1],))
    e = jnp.asarray(basis, jnp.float32) @ (u / jnp.linalg.norm(u)) * radius
    m = self.dims[0]
    star = self.equilibrium()
    return {"x": star["x"] + e[:m], "y": star["y"] + e[m:]}

  def plane(self, params):
    """The point (x[0], y[0]) for trajectory plots."""
    return jnp.stack([params["x"][0], params["y"][0]])


def bilinear(A, b=None, c=None) -> LinearGame:
  r"""The bilinear game min_x max_y xᵀAy + bᵀx + cᵀy (any shape of A).

  Its Jacobian ``[[0, A], [−Aᵀ, 0]]`` has eigenvalues ±iσ_k (σ_k the singular
  values of A), so simultaneous GDA multiplies each mode by √(1 + η²σ_k²).

  >>> g = bilinear([[1.0]])
  >>> g.jacobian().tolist()
  [[0.0, 1.0], [-1.0, 0.0]]
  """
  return LinearGame(A, b=b, c=c, name="bilinear")


def quadratic(dim: int = 2, mu: float = 0.1, coupling: float = 1.0, seed: int = 0,
              b=None, c=None) -> LinearGame:
  r"""A strongly-convex–strongly-concave quadratic game.

  ``f = ½xᵀPx + xᵀAy − ½yᵀQy + bᵀx + cᵀy`` with x, y ∈ R^dim, P = Q = μ I + R Rᵀ/dim
  (so f is μ-strongly convex in x and concave in y) and A = coupling · N/√dim
  for standard normal R, N drawn with ``seed``. J + Jᵀ = 2 diag(P, Q) ≻ 0,
  hence every eigenvalue of J has real part ≥ μ and GDA converges for small η.
  """
  check_positive(dim, "quadratic.dim", integer=True)
  check_positive(mu, "quadratic.mu")
  rng = np.random.default_rng(seed)
  r = rng.standard_normal((dim, dim))
  sym = mu * np.eye(dim) + r @ r.T / dim
  A = coupling * rng.standard_normal((dim, dim)) / np.sqrt(dim)
  return LinearGame(A, P=sym, Q=sym.copy(), b=b, c=c, name="quadratic")


DIRAC_LOSSES = Registry("Dirac-GAN loss")
DIRAC_LOSSES.register("minimax", (lambda t: -jax.nn.softplus(-t), 0.5, False))
DIRAC_LOSSES.register("non_saturating", (lambda t: -jax.nn.softplus(-t), 0.5, True))
DIRAC_LOSSES.register("wasserstein", (lambda t: t, 1.0, False))


class DiracGAN(_Game):
  r"""The Dirac-GAN of Mescheder et al. (2018).

  Data at 0, generator G_θ = θ (a point mass), discriminator D_ψ(x) = ψx, and

  .. math::
    L(θ, ψ) = f(ψθ) + f(0),

  with f(t) = −log(1 + e^{−t}) (f'(0) = ½) for 'minimax' and 'non_saturating',
  f(t) = t (f'(0) = 1) for 'wasserstein'. The generator minimises L (or
  −f(−ψθ) when non-saturating); the discriminator minimises
  ``−L + (γ/2) ψ²`` (the zero-centred penalty R1 = γ/2·|∇_x D_ψ|²). The
  unique equilibrium is (θ, ψ) = (0, 0) and, coordinates ordered
  (ψ, θ), ``J = [[γ, −f'(0)], [f'(0), 0]]``. Without penalty its eigenvalues
  are ±i f'(0) and simultaneous GD multiplies the distance by
  √(1 + h² f'(0)²) per step near θ*.
  """

  players = ("discriminator", "generator")
  critics = ("discriminator",)
  plane_labels = ("generator θ", "discriminator ψ")

  def __init__(self, loss: str = "minimax", penalty: float = 0.0):
    self.f, self.fprime0, self.non_saturating = DIRAC_LOSSES.get(loss, key="dirac_gan.loss")
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty < 0:
      raise ConfigError(f"dirac_gan.penalty={penalty!r} is not allowed; expected a number >= 0.")
    self.name, self.loss, self.penalty = "dirac_gan", loss, float(penalty)

  def losses(self):
    """Player -> loss(params) for the discriminator ψ and the generator θ."""
    f, gamma = self.f, self.penalty

    def d_loss(p):
      psi, theta = p["discriminator"][0], p["generator"][0]
      return -(f(psi * theta) + f(0.0)) + 0.5 * gamma * psi ** 2

    def g_loss(p):
      psi, theta = p["discriminator"][0], p["generator"][0]
      return -f(-psi * theta) if self.non_saturating else f(psi * theta)

    return {"discriminator": d_loss, "generator": g_loss}

  def directions_fn(self, params, key=None):
    """``(params, key) -> (directions, values)`` by one joint ``jax.grad``."""
    del key
    values, directions, _ = game_lib.joint_directions(self.losses(), params)
    return directions, values

  def equilibrium(self):
    """(ψ, θ) = (0, 0)."""
    return {"discriminator": jnp.zeros(1), "generator": jnp.zeros(1)}

  def jacobian(self) -> np.ndarray:
    """``[[γ, −f'(0)], [f'(0), 0]]`` in the coordinates (ψ, θ)."""
    a = self.fprime0
    return np.array([[self.penalty, -a], [a, 0.0]])

  def critical_penalty(self, learning_rate: float) -> float:
    r"""γ_c = h f'(0)²: simultaneous GD with step h converges locally iff γ > γ_c.

    For γ < 2f'(0) the eigenvalues of I − hJ satisfy
    |1 − hλ|² = 1 − hγ + h² f'(0)², below 1 exactly when γ > h f'(0)² (for
    larger γ the eigenvalues are real and need hλ_max < 2).
    """
    return learning_rate * self.fprime0 ** 2

  def invariant_basis(self):
    return None

  def distance(self, params):
    """‖(ψ, θ)‖."""
    return jnp.sqrt(jnp.sum(params["discriminator"] ** 2) + jnp.sum(params["generator"] ** 2))

  def distance_floor(self) -> float:
    return 1e-30

  def init(self, key, radius=1.0):
    """A point at distance ``radius`` from (0, 0), in a uniformly random direction."""
    angle = jax.random.uniform(key, (), minval=0.0, maxval=2 * jnp.pi)
    return {"discriminator": radius * jnp.sin(angle)[None],
            "generator": radius * jnp.cos(angle)[None]}

  def plane(self, params):
    """The point (θ, ψ) for trajectory plots."""
    return jnp.stack([params["generator"][0], params["discriminator"][0]])


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
    game: a game of this module.
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
    raise ConfigError(f"optimizer={optimizer!r} has no linearisation at the equilibrium; "
                      f"allowed: {', '.join(LINEAR_OPTIMIZERS)}.")
  a, b = (alpha + beta, beta) if optimizer == "ogda" else (1.0, 0.0)
  J = game.jacobian()
  n = J.shape[0]
  I, O = np.eye(n), np.zeros((n, n))
  H = np.diag(coordinate_vector(
      game, player_learning_rates(game, learning_rate, critic_lr_ratio)))
  if scheme == "simultaneous":
    return np.block([[I - a * H @ J, b * H], [J, O]])
  if scheme == "extragradient":
    L = np.hstack([I - a * H @ J, b * H])
    e_new = np.hstack([I, b * H]) - a * H @ J @ L
    return np.vstack([e_new, J @ L])
  if scheme == "alternating":
    order = [list(game.critics)] * critic_steps + [
        [p for p in game.players if p not in game.critics]]
    M = np.eye(2 * n)
    for group in order:
      G = np.diag(coordinate_vector(game, {p: float(p in group) for p in game.players}))
      Z = np.block([[I - a * G @ H @ J, b * G @ H], [G @ J, I - G]])
      M = Z @ M
    return M
  raise ConfigError(f"scheme={scheme!r} is not a known update scheme; "
                    "allowed: alternating, extragradient, simultaneous.")


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

"""Toy games with known equilibria: bilinear, strongly-convex–strongly-concave, Dirac-GAN.

Each game is seen by the schemes of :mod:`ebm_gan.schemes` through
``directions_fn(params, key) -> (directions, values)``: ``params`` is a dict
keyed by player and every direction is the gradient of that player's *own*
loss (a maximiser minimises the negated objective), computed with
:func:`ebm_gan.game.joint_directions`. Each game knows its equilibrium θ*, its
Jacobian J at θ* and a distance to θ*; :mod:`ebm_gan.games.theory` turns J
into the linearised update maps and rates of docs/theory.md §7.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

from ebm_gan import game as game_lib
from ebm_gan.errors import InvalidArgumentError, check_positive, lookup
from ebm_gan.games import theory

_EPS32 = float(np.finfo(np.float32).eps)


def _vector(v, size, key):
  v = np.zeros(size) if v is None else np.asarray(v, dtype=np.float64)
  if v.shape != (size,):
    raise InvalidArgumentError(f"{key}={v.tolist()!r} has shape {v.shape}; the game needs shape ({size},).")
  return v


class _Game:
  """What every toy game shares: its directions and its theory (:mod:`ebm_gan.games.theory`)."""

  def losses(self):
    raise NotImplementedError

  def directions_fn(self, params, key=None):
    """``(params, key) -> (directions, values)`` by one joint ``jax.grad``."""
    del key
    values, directions, _ = game_lib.joint_directions(self.losses(), params)
    return directions, values

  def linearised_map(self, optimizer: str, scheme: str, learning_rate: float, **kwargs):
    """:func:`ebm_gan.games.theory.linearised_map` of this game (the update map at θ*)."""
    return theory.linearised_map(self, optimizer, scheme, learning_rate, **kwargs)

  def theoretical_rate(self, optimizer: str, scheme: str, learning_rate: float, **kwargs):
    """:func:`ebm_gan.games.theory.theoretical_rate` of this game (ρ of the map at θ*)."""
    return theory.theoretical_rate(self, optimizer, scheme, learning_rate, **kwargs)


class LinearGame(_Game):
  r"""min_x max_y  f(x, y) = ½xᵀPx + xᵀAy − ½yᵀQy + bᵀx + cᵀy.

  Player 'x' minimises f, player 'y' minimises −f, so their directions
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
      raise InvalidArgumentError(f"A={A.tolist()!r} has shape {A.shape}; expected a matrix of shape "
                        "(dim_x, dim_y).")
    m, n = A.shape
    P = np.zeros((m, m)) if P is None else np.asarray(P, dtype=np.float64)
    Q = np.zeros((n, n)) if Q is None else np.asarray(Q, dtype=np.float64)
    if P.shape != (m, m):
      raise InvalidArgumentError(f"P has shape {P.shape}; with A of shape {A.shape} it must be ({m}, {m}).")
    if Q.shape != (n, n):
      raise InvalidArgumentError(f"Q has shape {Q.shape}; with A of shape {A.shape} it must be ({n}, {n}).")
    self.name = name
    self.A, self.P, self.Q = A, P, Q
    self.b, self.c = _vector(b, m, "b"), _vector(c, n, "c")
    self.dims = (m, n)
    self._J = np.block([[P, A], [-A.T, Q]])
    grad_matrix = np.block([[P, A], [A.T, -Q]])
    rhs = -np.concatenate([self.b, self.c])
    z, *_ = np.linalg.lstsq(grad_matrix, rhs, rcond=None)
    if not np.allclose(grad_matrix @ z, rhs, atol=1e-8 * (1 + np.abs(rhs).max())):
      raise InvalidArgumentError("the game has no equilibrium: (b, c) is not in the range of "
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


# The Dirac-GAN's losses by name: (f, f'(0), non-saturating generator?).
DIRAC_LOSSES = {
    "minimax": (lambda t: -jax.nn.softplus(-t), 0.5, False),
    "non_saturating": (lambda t: -jax.nn.softplus(-t), 0.5, True),
    "wasserstein": (lambda t: t, 1.0, False),
}


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
    self.f, self.fprime0, self.non_saturating = lookup(DIRAC_LOSSES, loss, "loss", "Dirac-GAN loss")
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty < 0:
      raise InvalidArgumentError(f"penalty={penalty!r} is not allowed; expected a number >= 0.")
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

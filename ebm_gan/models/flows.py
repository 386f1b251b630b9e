"""Invertible generators with an exact log-density (docs/theory.md §4, the exact estimator).

For an invertible, differentiable x = G_f(z) with z ~ N(0, I_d) the change of
variables gives

.. math::  \\log q_f(x) = \\log N(z; 0, I) − \\log |\\det ∂G_f/∂z(z)|,   z = G_f^{-1}(x),

so the entropy H(q_f) = ½ d log(2πe) + E_z[log |det ∂G_f/∂z|] has an unbiased,
reparameterised Monte Carlo estimate whose gradient is ∇_f H exactly.

:class:`CouplingFlow` is x = W · c_L ∘ … ∘ c_1(z) + b with affine coupling
layers c_l (RealNVP, Dinh et al. 2017) and a learnable invertible matrix W;
every coupling starts as the identity, so at initialisation the flow is the
affine generator x = W z + b (a closed form the tests use). Any data dimension
works, odd ones included (the halves are ⌊d/2⌋ and ⌈d/2⌉, reversed between
layers). :func:`forward_and_log_det` also serves
:class:`ebm_gan.models.AffineGenerator` (log |det A|), so the exact estimator
works with the linear-Gaussian generator too.
"""

from __future__ import annotations

import math
from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.errors import InvalidArgumentError, lookup
from ebm_gan.models.gaussian import AffineGenerator
from ebm_gan.models.mlp import ACTIVATIONS


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I) = −½ |z|² − ½ d log 2π, per sample: z[B, d] → [B]."""
  return -0.5 * jnp.sum(z * z, axis=-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


class AffineCoupling(nn.Module):
  """One affine coupling layer followed by a reversal of the coordinates.

  With u = (u_a, u_b), u_a the first ⌊d/2⌋ coordinates:

  .. math::  v_b = u_b ⊙ \\exp s(u_a) + t(u_a),   v_a = u_a,   out = reverse(v),

  log |det ∂out/∂u| = Σ s(u_a). The log-scale is soft-clamped,
  s = c·tanh(raw / c) with c = ``max_log_scale``, and the conditioner's last
  layer starts at zero, so the layer starts as a pure reversal.

  Attributes:
    data_dim: d ≥ 1 (for d = 1 the conditioner sees a constant: an elementwise affine map).
    hidden: the conditioner MLP's widths.
    activation: a name in :data:`ebm_gan.models.ACTIVATIONS`.
    max_log_scale: c above.
  """
  data_dim: int
  hidden: Sequence[int] = (64, 64)
  activation: str = "relu"
  max_log_scale: float = 3.0

  def setup(self):
    self.d_a = self.data_dim // 2
    self.layers = [nn.Dense(w) for w in self.hidden]
    self.out = nn.Dense(2 * (self.data_dim - self.d_a), kernel_init=nn.initializers.zeros)

  def _scale_shift(self, u_a):
    act = lookup(ACTIVATIONS, self.activation, "activation", "activation")
    # d = 1: nothing to condition on; a constant input makes (s, t) learnable constants.
    h = u_a if self.d_a else jnp.ones((u_a.shape[0], 1), u_a.dtype)
    for layer in self.layers:
      h = act(layer(h))
    raw_s, t = jnp.split(self.out(h), 2, axis=-1)
    c = self.max_log_scale
    return c * jnp.tanh(raw_s / c), t

  def __call__(self, u):
    """(out, log |det ∂out/∂u|[B]) for u[B, d]."""
    u_a, u_b = u[:, :self.d_a], u[:, self.d_a:]
    s, t = self._scale_shift(u_a)
    v = jnp.concatenate([u_a, u_b * jnp.exp(s) + t], axis=-1)
    return v[:, ::-1], jnp.sum(s, axis=-1)

  def inverse(self, out):
    """(u, log |det ∂u/∂out|[B]): the inverse of ``__call__``."""
    v = out[:, ::-1]
    u_a, v_b = v[:, :self.d_a], v[:, self.d_a:]
    s, t = self._scale_shift(u_a)
    return jnp.concatenate([u_a, (v_b - t) * jnp.exp(-s)], axis=-1), -jnp.sum(s, axis=-1)


class CouplingFlow(nn.Module):
  """A normalising-flow generator x = W · c_L ∘ … ∘ c_1(z) + b, latent_dim = data_dim.

  log q_f(x) is exact by the change of variables (module docstring);
  log |det W| comes from an LU-free ``slogdet`` (d³, fine for the toy and
  small-image dimensions this project uses).

  Attributes:
    data_dim: d, also the latent dimension.
    num_layers: L affine couplings (0 gives the affine generator).
    hidden: each coupling's conditioner widths.
    activation: the conditioners' activation.
    max_log_scale: the couplings' log-scale clamp.
    init_scale: W starts as ``init_scale`` · I.
  """
  data_dim: int
  num_layers: int = 4
  hidden: Sequence[int] = (64, 64)
  activation: str = "relu"
  max_log_scale: float = 3.0
  init_scale: float = 1.0

  @property
  def latent_dim(self) -> int:
    return self.data_dim

  def setup(self):
    self.couplings = [AffineCoupling(self.data_dim, tuple(self.hidden), self.activation,
                                     self.max_log_scale) for _ in range(self.num_layers)]
    self.w = self.param("W", lambda k, s: self.init_scale * jnp.eye(*s),
                        (self.data_dim, self.data_dim))
    self.b = self.param("b", nn.initializers.zeros, (self.data_dim,))

  def _check(self, z):
    chex.assert_shape(z, (None, self.data_dim))

  def forward_and_log_det(self, z):
    """(x, log |det ∂x/∂z|[B]) for latents z[B, d]."""
    self._check(z)
    log_det = jnp.zeros(z.shape[:1], z.dtype)
    for coupling in self.couplings:
      z, ld = coupling(z)
      log_det = log_det + ld
    return z @ self.w.T + self.b, log_det + jnp.linalg.slogdet(self.w)[1]

  def __call__(self, z):
    """x = G_f(z)."""
    return self.forward_and_log_det(z)[0]

  def sample_and_log_prob(self, z):
    """(x, log q_f(x)[B]) = (G_f(z), log N(z; 0, I) − log |det ∂x/∂z|)."""
    x, log_det = self.forward_and_log_det(z)
    return x, standard_normal_log_prob(z) - log_det

  def inverse(self, x):
    """(z, log |det ∂z/∂x|[B]) with z = G_f^{-1}(x)."""
    self._check(x)
    u = jnp.linalg.solve(self.w, (x - self.b).T).T
    log_det = jnp.broadcast_to(-jnp.linalg.slogdet(self.w)[1], x.shape[:1])
    for coupling in reversed(self.couplings):
      u, ld = coupling.inverse(u)
      log_det = log_det + ld
    return u, log_det

  def log_prob(self, x):
    """log q_f(x) = log N(G^{-1}(x); 0, I) + log |det ∂G^{-1}/∂x|."""
    z, log_det = self.inverse(x)
    return standard_normal_log_prob(z) + log_det


def forward_and_log_det(generator: nn.Module, variables, z: jax.Array):
  """(x, log |det ∂x/∂z|[B]) for an invertible generator.

  Supports modules with a ``forward_and_log_det`` method (:class:`CouplingFlow`)
  and :class:`ebm_gan.models.AffineGenerator` with a square A
  (log |det ∂x/∂z| = log |det A|, the same for every z).

  Raises:
    InvalidArgumentError: the generator is not invertible in a way this function knows.
  """
  if hasattr(generator, "forward_and_log_det"):
    return generator.apply(variables, z, method="forward_and_log_det")
  if isinstance(generator, AffineGenerator):
    if generator.data_dim != generator.latent_dim:
      raise InvalidArgumentError(
          f"the exact (flow) entropy needs a square affine generator; got data_dim="
          f"{generator.data_dim}, latent_dim={generator.latent_dim}.")
    log_det = jnp.linalg.slogdet(variables["params"]["A"])[1]
    return generator.apply(variables, z), jnp.broadcast_to(log_det, z.shape[:1])
  raise InvalidArgumentError(
      f"the exact (flow) entropy needs an invertible generator with an exact log-density "
      f"(a CouplingFlow or a square AffineGenerator); got {type(generator).__name__}.")

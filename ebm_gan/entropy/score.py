"""An amortised denoising score of the noise-injected generator (docs/theory.md (4.16)–(4.17)).

For x = G_f(z) + σε, Tweedie's formula (Vincent 2011's denoising score matching) gives the
score of q_f itself as a regression of the noise on the sample:

.. math::

  ∇_x \\log q_f(x) = E[∇_x \\log N(x; G_f(z), σ^2 I) \\mid x] = −E[ε \\mid x] / σ,

so a network ε̂_ψ(x) fitted by least squares to the noise that made x,
ℓ_score(ψ) = ½ E‖ε̂_ψ(G_f(z) + σε) − ε‖², has the exact score ŝ = −ε̂_ψ/σ at its optimum,
and the generator's entropy gradient is the surrogate (4.6) with it. The network is a third
player that follows q_f from step to step (amortised, as MEG's statistics network), so it pools
many batches: unlike kNN or SSGE its estimate does not rest on the B samples of one batch.
This is the fixed-noise case of AR-DAE (Lim et al. 2020), which anneals a separate noise to 0
for a deterministic generator; here the noise is the generator's own, so nothing is annealed
and there is no bias at the optimum. σ can be learned by the generator (PresGAN).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.entropy.base import score_surrogate
from ebm_gan.entropy.knn import kozachenko_leonenko
from ebm_gan.entropy.noisy import NoiseInjection
from ebm_gan.errors import check_positive
from ebm_gan.models.mlp import ACTIVATIONS
from ebm_gan.errors import lookup


class NoisePredictor(nn.Module):
  """ε̂_ψ(x) = MLP(x) ∈ ℝ^d (x flattened per sample); the last layer starts at zero (ŝ = 0)."""
  hidden: Sequence[int] = (256, 256)
  activation: str = "swish"

  @nn.compact
  def __call__(self, x):
    act = lookup(ACTIVATIONS, self.activation, "activation", "activation")
    x = x.reshape(x.shape[0], -1)
    h = x
    for width in self.hidden:
      h = act(nn.Dense(width)(h))
    return nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros)(h)


@dataclasses.dataclass(frozen=True)
class DenoisingScore(NoiseInjection):
  """x = G_f(z) + σε; ∇_f H through a denoising network's score ŝ = −ε̂_ψ(x)/σ (module docstring).

  Brings the player ``'score'`` (loss ½‖ε̂_ψ(x') − ε'‖² on fresh noise ε', the generator
  fixed). ``h``'s value is the Kozachenko–Leonenko estimate (4.4) on the batch, its gradient
  the surrogate (4.6) with ŝ.

  Attributes:
    sigma, learn_sigma: σ of x = G_f(z) + σε and whether the generator learns it
      (:class:`ebm_gan.entropy.noisy.NoiseInjection`).
    hidden: the noise predictor's widths.
    activation: its activation (smooth ones fit a score better than ReLU's kinks).
  """
  sigma: float = 0.05
  hidden: tuple[int, ...] = (256, 256)
  activation: str = "swish"

  players = ("score",)
  value_name = "entropy"

  def __post_init__(self):
    check_positive(self.sigma, "sigma")
    for i, width in enumerate(self.hidden):
      check_positive(width, f"hidden[{i}]", integer=True)
    lookup(ACTIVATIONS, self.activation, "activation", "activation")

  @property
  def network(self) -> NoisePredictor:
    return NoisePredictor(tuple(self.hidden), self.activation)

  def init(self, key, generator, params, z):
    x = generator.apply(params["generator"], z)
    return {**self.noise_init(params), "score": self.network.init(key, x)}

  def entropy(self, generator, params, z, x, key):
    flat = jax.lax.stop_gradient(x.reshape(x.shape[0], -1))
    sigma = self.noise_scale(jax.lax.stop_gradient(params))
    score = -self.network.apply(jax.lax.stop_gradient(params["score"]), flat) / sigma
    return score_surrogate(kozachenko_leonenko(flat), score, x), {"sigma": sigma}

  def losses(self, generator, params, z, x, key):
    params_sg, z = jax.lax.stop_gradient((params, z))
    clean = generator.apply(params_sg["generator"], z)
    clean = clean.reshape(clean.shape[0], -1)
    eps = jax.random.normal(key, clean.shape, clean.dtype)
    noisy = clean + self.noise_scale(params_sg) * eps
    residual = self.network.apply(params["score"], noisy) - eps
    loss = 0.5 * jnp.mean(jnp.sum(residual ** 2, axis=-1))
    return {"score": (loss, {"score_dsm": loss})}

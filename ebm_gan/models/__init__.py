"""Flax (linen) players: energies x[B, ...] → U[B] and generators z[B, latent_dim] → x[B, ...].

* :mod:`~ebm_gan.models.mlp`: MLP energy and generator;
* :mod:`~ebm_gan.models.conv`: DCGAN-style conv energy and generator for images
  x[B, H, W, C], with optional (stateless, exact) spectral normalisation and the generator's
  optional group normalisation;
* :mod:`~ebm_gan.models.gaussian`: the affine generator and the quadratic energy
  (closed-form Gaussian fixtures);
* :mod:`~ebm_gan.models.flows`: an invertible coupling-flow generator with its log-determinant.
"""

from ebm_gan.models.conv import (FEATURE_NORMALISATIONS, NORMALISATIONS, ConvEnergy,
                                 ConvGenerator, NormalisedConv, NormalisedDense,
                                 check_image_shape, spectral_norm, spectral_normalise)
from ebm_gan.models.flows import AffineCoupling, CouplingFlow, forward_and_log_det
from ebm_gan.models.gaussian import AffineGenerator, QuadraticEnergy
from ebm_gan.models.mlp import ACTIVATIONS, MLP, MLPEnergy, MLPGenerator

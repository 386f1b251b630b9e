"""Toy games with known equilibria, their linear theory, and many runs as one program.

* :mod:`~ebm_gan.games.toy`: the bilinear game, the strongly-convex–strongly-concave
  quadratic game and the Dirac-GAN;
* :mod:`~ebm_gan.games.theory`: linearised update maps at θ* and their spectral
  radii, the theoretical rates (docs/theory.md §7);
* :mod:`~ebm_gan.games.vectorised`: a grid of (game, method, learning rate, seed)
  runs vmapped and scanned in one jit.
"""

from ebm_gan.games import theory, toy, vectorised
from ebm_gan.games.theory import linearised_map, numerical_jacobian, theoretical_rate
from ebm_gan.games.toy import DiracGAN, LinearGame, bilinear, quadratic

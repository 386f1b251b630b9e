"""GDA vs alternating GDA vs OGDA vs optimistic Adam vs extragradient on toy games.

Launch (the whole grid is one compiled program; tables and plots go to the workdir):

  python -m experiments.run --config experiments/configs/toy_games.py --workdir runs/toy_games

A quick check (300 steps, 2 seeds, 2 learning rates; seconds):

  python -m experiments.run --config experiments/configs/toy_games.py --config.smoke=True

Overrides, e.g. a random 3x2 bilinear game with a two-timescale critic:

  --config.bilinear.dim_x=3 --config.bilinear.dim_y=2 --config.bilinear.matrix=random
  --config.critic_lr_ratio=4.0 --config.learning_rates="(0.01, 0.1)"

Methods are presets (gda, alternating_gda, ogda, optimistic_adam, extragradient)
or 'optimizer@scheme' (e.g. 'ogda@alternating', 'adam@simultaneous').
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the toy-games comparison config (the values are commented)."""
  c = ml_collections.ConfigDict()
  c.program = "toy_games"          # ebm_gan.runner.programs.toy_games
  c.smoke = False                  # shrink the grid for a seconds-long check (see finalize)
  c.seed = 0                       # initial points: θ* + init_radius · (random unit vector)
  c.num_steps = 2000               # update steps per run (an alternating round is one step)
  c.num_seeds = 4                  # initial points per (game, method, learning rate)
  c.learning_rates = (0.01, 0.03, 0.1, 0.3, 1.0)   # η of every player (critics: η·critic_lr_ratio)
  c.methods = ("gda", "alternating_gda", "ogda", "optimistic_adam", "extragradient")
  c.games = ("bilinear", "dirac_gan", "quadratic")
  c.critic_lr_ratio = 1.0          # two-timescale: the critic's η over the generator's
  c.critic_steps = 1               # critic sub-steps per alternating round
  c.divergence_bound = 1e3         # ‖θ − θ*‖ above this (or NaN/Inf) marks a run diverged

  c.optimizer_options = ml_collections.ConfigDict()
  c.optimizer_options.ogda = ml_collections.ConfigDict(
      {"alpha": 1.0, "beta": 1.0, "first_step": "repeat"})   # repeat: g_{-1}=g_0 | zero
  c.optimizer_options.optimistic_adam = ml_collections.ConfigDict(
      {"b1": 0.5, "b2": 0.9})

  # min_x max_y xᵀAy + bᵀx + cᵀy; the critic (stepping first when alternating) is y.
  c.bilinear = ml_collections.ConfigDict()
  c.bilinear.dim_x = 1
  c.bilinear.dim_y = 1
  c.bilinear.matrix = "identity"   # identity | random | given (then A below)
  c.bilinear.A = ((1.0,),)         # shape (dim_x, dim_y); used when matrix='given'
  c.bilinear.matrix_seed = 0       # for matrix='random'
  c.bilinear.b = ()                # () = zeros, else dim_x numbers
  c.bilinear.c = ()                # () = zeros, else dim_y numbers
  c.bilinear.init_radius = 1.0

  # Mescheder et al.'s Dirac-GAN: D_ψ(x) = ψx, G = θ, data at 0.
  c.dirac_gan = ml_collections.ConfigDict()
  c.dirac_gan.loss = "minimax"     # minimax | non_saturating (f'(0)=1/2) | wasserstein (1)
  c.dirac_gan.penalty = 0.0        # zero-centred penalty γ/2·ψ²; converges for γ > η f'(0)²
  c.dirac_gan.init_radius = 0.5

  # ½xᵀPx + xᵀAy − ½yᵀQy with P = Q ⪰ mu·I: strongly convex–strongly concave.
  c.quadratic = ml_collections.ConfigDict()
  c.quadratic.dim = 2
  c.quadratic.mu = 0.1
  c.quadratic.coupling = 1.0
  c.quadratic.matrix_seed = 0
  c.quadratic.init_radius = 1.0
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Applies the ``smoke`` switch after overrides (≤ 300 steps, 2 seeds, 2 learning rates)."""
  from ebm_gan.runner.programs import toy_games  # pylint: disable=g-import-not-at-top
  return toy_games.apply_smoke(c)

"""ebm-gan: GANs seen as energy-based models, in JAX (the theory: docs/theory.md).

U is a log-unnormalised density throughout (q_m ∝ exp U_m). Each player
minimises its own loss; ``value_and_directions`` returns, per player, the
gradient of that player's own loss — what an optax transform expects.

This package is the library: games, objectives, optimisers, update schemes,
entropy estimators, models, the train step, toy games and data. It reads no
command line and writes no files; the experiment runner is ``ebm_gan.runner``,
which is not imported here.
"""

from ebm_gan import classifier
from ebm_gan import data
from ebm_gan import entropy
from ebm_gan import errors
from ebm_gan import frechet
from ebm_gan import game
from ebm_gan import games
from ebm_gan import metrics
from ebm_gan import models
from ebm_gan import modes
from ebm_gan import objectives
from ebm_gan import optim
from ebm_gan import parallel
from ebm_gan import schemes
from ebm_gan import train
from ebm_gan.data import toy
from ebm_gan.errors import InvalidArgumentError
from ebm_gan.game import EBMGame, GANGame, Game, check_game, joint_directions, player_losses
from ebm_gan.train import TrainState, init_state, make_chunk, make_train_step

__version__ = "0.1.0"

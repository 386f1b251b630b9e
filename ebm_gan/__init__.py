"""ebm-gan: GANs seen as energy-based models, in JAX.

U is a log-unnormalised density throughout (q_m ∝ exp U_m). Each player
minimises its own loss; ``value_and_directions`` returns descent directions.
"""

from ebm_gan import builders
from ebm_gan import entropy
from ebm_gan import game
from ebm_gan import metrics
from ebm_gan import models
from ebm_gan import objectives
from ebm_gan import optim
from ebm_gan import schemes
from ebm_gan import toy_games
from ebm_gan import train
from ebm_gan import vectorised
from ebm_gan.data import toy
from ebm_gan.game import EBMGame, GANGame, joint_directions
from ebm_gan.registry import ConfigError
from ebm_gan.train import TrainState, init_state, make_chunk, make_train_step

__version__ = "0.1.0"

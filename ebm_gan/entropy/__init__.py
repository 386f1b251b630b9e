"""Estimators of the generator's entropy H(q_f), behind one protocol (docs/theory.md §4).

* :class:`Flow` — exact, for an invertible generator (:mod:`~ebm_gan.entropy.exact`);
* :class:`NoisyGenerator` — x = G_f(z) + σε, ∇_f H through the posterior z | x
  (:mod:`~ebm_gan.entropy.noisy`);
* :class:`MutualInformation` — MEG's statistics-network bound on I(x; z), a third
  player (:mod:`~ebm_gan.entropy.mutual_info`);
* :class:`KNN` — Kozachenko–Leonenko (:mod:`~ebm_gan.entropy.knn`);
* :class:`JacobianEntropy` — the change of variables through any injective generator's
  Jacobian (:mod:`~ebm_gan.entropy.jacobian`);
* :class:`SpectralStein` — SSGE's kernel score on the batch (:mod:`~ebm_gan.entropy.stein`);
* :class:`DenoisingScore` — x = G_f(z) + σε, an amortised denoising network's score, a third
  player (:mod:`~ebm_gan.entropy.score`);
* :class:`NoEntropy` — 0, the game of L1 alone.

The protocol every estimator follows is :class:`EntropyEstimator` (:mod:`~ebm_gan.entropy.base`).
"""

from ebm_gan.entropy.base import EntropyEstimator, NoEntropy, PushForward, score_surrogate
from ebm_gan.entropy.exact import Flow
from ebm_gan.entropy.jacobian import JacobianEntropy, log_volume_change
from ebm_gan.entropy.knn import KNN, knn_entropy, kozachenko_leonenko, unit_ball_log_volume
from ebm_gan.entropy.mutual_info import MutualInformation, StatisticsNetwork, mi_bounds
from ebm_gan.entropy.noisy import NoiseInjection, NoisyGenerator
from ebm_gan.entropy.score import DenoisingScore, NoisePredictor
from ebm_gan.entropy.stein import SpectralStein, rbf_bandwidth, spectral_stein_score

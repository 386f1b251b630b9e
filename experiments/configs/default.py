"""The maximum-entropy EBM-GAN on 25-gaussians with optimistic gradient descent.

The generator maximises L2 = E_q[U] + H(q_f) with H(q_f) estimated by Kozachenko-Leonenko
on the batch (k = 1; docs/theory.md (4.11)): of the estimators, the one whose gradient
follows the exact ∇H on 25-gaussians' sharp modes (cosine ≥ 0.98 in
results/entropy_gradients.md) at a cost the 2-core budget bears. MEG's MI bound at σ = 0
(the previous default) is not an entropy estimator: its gradient's cosine with ∇H is
−0.2 to 0.5 on a linear-Gaussian generator (docs/theory.md (4.10)).

The optimiser is optimistic Adam (Daskalakis et al. 2018: the optimistic step
2r_t − r_{t−1} on Adam's direction r_t), both rates decaying on a cosine to 5%, and the
summary evaluates the parameters' moving average (δ = 0.999). R1 starts at 0.003 and
anneals to 1e-4 (a weight of w spreads q_m by ~√(2w) around each mode), and the height
penalty 0.1·E_p[U²] ties the modes' log-heights (docs/theory.md (6.10)–(6.11)). L1's
negatives are the generator's samples moved by 3 MALA steps on q_m (docs/theory.md
(11.5)); batch 512. Why each setting, measured on three seeds: results/default_run.md.
Plain OGDA (``--config.optimizer.name=ogda``) is stable here but learns the
energy's fine structure far too slowly for a CPU budget.

Launch (writes into runs/default-<timestamp> unless --workdir is given):

  python -m experiments.run --config experiments/configs/default.py

A quick check (a few hundred steps, seconds):

  python -m experiments.run --config experiments/configs/default.py --config.smoke=True

Any field can be overridden, e.g. ``--config.optimizer.name=gda --config.steps=2000``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the default experiment config (the values are commented)."""
  c = ml_collections.ConfigDict()
  c.program = "ebm_gan"           # which program experiments.run starts
  c.label = ""                    # a free name for tables and reports; no effect on training
  c.seed = 0
  c.smoke = False                 # shrink everything for a quick check (see finalize)
  c.dataset = "25gaussians"       # 8gaussians | 25gaussians | rings | circles | checkerboard
                                  # | swissroll | 2spirals | pinwheel | moons; images: digits
                                  # | stacked_digits | stacked4_digits | mnist | fashion_mnist
                                  # | cifar10 | stacked_mnist
  c.data = ml_collections.ConfigDict()
  c.data.dir = "~/tensorflow_datasets"  # prepared tfds folders (mnist, cifar10, ...; BUILD.md)
  c.game = "ebm"                  # ebm (max_m min_f L3) | gan (logit discriminator)
  c.gan_loss = "non_saturating"   # for game=gan: minimax | non_saturating | wasserstein | hinge | least_squares

  c.model = ml_collections.ConfigDict()
  c.model.energy = "mlp"          # mlp | quadratic (2-D) | conv (images)
  c.model.generator = "mlp"       # mlp | affine | flow (2-D) | conv (images)
  c.model.energy_hidden = (256, 256, 256)
  c.model.generator_hidden = (256, 256, 256)
  c.model.energy_activation = "leaky_relu"
  c.model.generator_activation = "relu"
  c.model.latent_dim = 2
  c.model.flow_layers = 4         # affine couplings of model.generator=flow (widths: generator_hidden)
  c.model.conv_width = 32         # conv models: channels of the first conv (doubled per halving)
  # Each conv player's own width; None: model.conv_width. The critic's serves the energy and
  # the GAN's discriminator.
  c.model.critic_conv_width = ml_collections.FieldReference(None, field_type=int)
  c.model.generator_conv_width = ml_collections.FieldReference(None, field_type=int)
  c.model.normalisation = "none"  # conv models: none | spectral
  # The conv generator's hidden feature maps: none | group (stateless group norm; batch norm
  # would need batch statistics, a mutable state the players' parameter pytrees do not carry).
  c.model.generator_normalisation = "none"

  c.entropy = ml_collections.ConfigDict()
  c.entropy.name = "knn"          # knn | flow | jacobian | ssge | noisy | score | mi | none;
                                  # each has its own block below
  c.entropy.weight = 1.0          # λ on Ĥ(q_f) in the generator's loss (1: the seed's L2; 0: none)
  c.entropy.flow = ml_collections.ConfigDict()   # exact; needs model.generator=flow|affine
  c.entropy.noisy = ml_collections.ConfigDict({
      "sigma": 0.1,                  # σ of x = G(z) + σε (its start value when learned)
      "learn_sigma": True,           # the generator learns log σ (PresGAN)
      "posterior": "importance",     # importance | mala
      "proposal": "learned",         # learned (amortised r(z|x), a 3rd player) | local
      "num_samples": 16,             # K importance proposals per sample
      "proposal_scale": 1.0,         # local proposal's width, in units of σ
      "proposal_hidden": (128, 128), # learned proposal's mean network
      "mala_steps": 10,
      "mala_step_size": 1.0,         # Langevin step, in units of σ
  })
  c.entropy.mi = ml_collections.ConfigDict({
      "sigma": 0.0,                  # MEG: a deterministic generator
      "bound": "jsd",                # jsd (MEG, Deep InfoMax) | dv (Donsker–Varadhan, MINE)
      "hidden": (256, 256),          # the statistics network T(x, z), a third player
      "activation": "relu",
      "negatives": 1,                # product-of-marginals pairs per sample
  })
  c.entropy.knn = ml_collections.ConfigDict({"k": 1})
  c.entropy.jacobian = ml_collections.ConfigDict()   # exact while the generator is injective
  c.entropy.ssge = ml_collections.ConfigDict({
      "bandwidth": "neighbour",      # median (the paper's) | neighbour (a local scale)
      "bandwidth_scale": 2.0,
      "eigen_ratio": 0.99,           # keep the eigenpairs holding this share of the kernel's trace
      "num_eigen": 0,                # or exactly this many (0: by eigen_ratio)
  })
  c.entropy.score = ml_collections.ConfigDict({
      "sigma": 0.05,                 # σ of x = G(z) + σε (its start value when learned)
      "learn_sigma": False,
      "hidden": (256, 256),          # the noise predictor ε̂(x), a third player
      "activation": "swish",
  })
  c.entropy.none = ml_collections.ConfigDict()

  c.penalty = ml_collections.ConfigDict()
  c.penalty.name = "score"        # none | score (= r1, on data) | r2 | wgan_gp
  c.penalty.weight = 0.003        # R1 biases q_m: spread ≈ √(2·weight) around each mode
  c.penalty.schedule = "cosine"   # constant | linear | cosine: the weight decays over `steps`
  c.penalty.final_weight = 1e-4   # ... to this weight (linear, cosine); <= penalty.weight
  c.penalty.height = 0.1          # α·E_p[U²] (game=ebm; not annealed): ties the modes' heights

  # game=ebm: the samples of L1's negative phase E_q[U] are the generator's, moved by MALA on
  # q_m ∝ exp U in data space (docs/theory.md (11.5)); the generator never sees them.
  c.negative_phase = ml_collections.ConfigDict()
  # 3 steps of ε = 0.003 (acceptance ~0.7) keep q_m on the data at ~1.6x the step's cost.
  c.negative_phase.mala_steps = 3   # 0: the generator's samples themselves (the seed's L1)
  c.negative_phase.step_size = 0.003  # ε of each step, in squared data units

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "optimistic_adam"  # gda | ogda | optimistic_adam | adam | ...
  c.optimizer.lr = 1e-3           # the generator's learning rate
  # the energy's (and estimators') rate; None = lr. At a generator rate of 3e-4 (two timescales)
  # the kNN generator kept 12-18% of its samples between the modes (results/default_run.md).
  c.optimizer.critic_lr = ml_collections.FieldReference(1e-3, field_type=float)
  c.optimizer.schedule = "cosine"     # constant | linear | cosine: both rates decay over `steps`
  c.optimizer.final_lr_fraction = 0.05  # ... to this fraction of themselves (linear, cosine)
  c.optimizer.ema_decay = 0.999   # δ of the parameters' moving average, evaluated at the end (0: off)
  # Each optimiser's own settings (docs/theory.md (7.2)-(7.5)); only optimizer.name's block is read.
  c.optimizer.optimistic_adam = ml_collections.ConfigDict(
      {"b1": 0.5, "b2": 0.9, "eps": 1e-8})        # Daskalakis et al. 2018
  c.optimizer.adam = ml_collections.ConfigDict(
      {"b1": 0.5, "b2": 0.999, "eps": 1e-8})      # the DCGAN momentum b1 = 0.5
  c.optimizer.ogda = ml_collections.ConfigDict(
      {"alpha": 1.0, "beta": 1.0, "first_step": "repeat"})
  c.optimizer.gda = ml_collections.ConfigDict()
  c.optimizer.sgd = ml_collections.ConfigDict()
  c.scheme = "simultaneous"       # simultaneous | alternating | extragradient
  c.critic_steps = 1              # critic steps per generator step (alternating)

  c.parallel = ml_collections.ConfigDict()
  c.parallel.devices = 0          # data-parallel over this many devices; 0: all (of every process)
  c.parallel.estimators = "global"  # 'global': any device count computes the 1-device run; 'per_device': shards
  c.parallel.coordinator = ""     # several processes/hosts: 'HOST:PORT' of process 0, or 'auto'
  c.parallel.num_processes = 0    # with coordinator HOST:PORT: how many processes (0: jax detects)
  c.parallel.process_id = -1      # with coordinator HOST:PORT: this process, 0.. (-1: jax detects)

  c.steps = 48000                 # ~11-17 min on 2 CPU cores (results/default_run.md)
  c.batch_size = 512              # 256: q_m's mode weights drift on some seeds (results/default_run.md)
  c.steps_per_dispatch = 200      # steps per compiled lax.scan chunk
  c.dispatch = "auto"             # scan | per_step (one jitted step per call) | auto: per_step for
                                  # conv models on CPU, where convs in lax.scan are ~10x slower
  c.log_every = 1                 # write every k-th step's metrics to metrics.jsonl
  c.eval_samples = 2500           # generator samples for the final metrics and picture
  c.evaluation = ml_collections.ConfigDict()
  # q_m sampled by latent MALA through the generator (docs/theory.md §11), reported as mcmc_*
  c.evaluation.mcmc_steps = 100   # 0: off
  c.evaluation.mcmc_step_size = 0.01
  # H(q_f) of the generator by Kozachenko-Leonenko on this many samples (2-D toys; 0: off),
  # reported as generator_entropy beside H(p) (data_entropy)
  c.evaluation.entropy_samples = 10000
  # stacked image datasets: the mode-counting protocol (docs/theory.md §10)
  c.evaluation.mode_samples = 26000   # generator samples classified into the 1000 modes
  c.evaluation.classifier_cache = ""  # the digit classifier's cache ('': ~/.cache/ebm_gan/classifiers)
  c.divergence_bound = 1e6        # |loss| above this (or NaN/Inf) marks the run diverged

  # --- the runner (ebm_gan.runner): checkpoints, logs, pictures ---
  c.checkpoint_every = 1000       # save the TrainState when a chunk crosses a multiple of this
  c.max_to_keep = 3               # most recent checkpoints kept in <workdir>/checkpoints
  c.picture_every = 5000          # pictures/step_N.png every N steps (0: only the final ones)
  c.tensorboard_every = 10        # TensorBoard scalars every k-th logged step (0: no TensorBoard)
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Applies the ``smoke`` switch after overrides: a tiny, seconds-long run."""
  if c.smoke:
    c.steps = min(c.steps, 100)
    c.steps_per_dispatch = min(c.steps_per_dispatch, 50)
    c.batch_size = min(c.batch_size, 64)
    c.model.energy_hidden = (32, 32)
    c.model.generator_hidden = (32, 32)
    c.eval_samples = min(c.eval_samples, 500)
    c.evaluation.entropy_samples = min(c.evaluation.entropy_samples, 2000)
    c.entropy.noisy.proposal_hidden = (16,)
    c.entropy.mi.hidden = (16,)
    c.model.flow_layers = 2
  return c

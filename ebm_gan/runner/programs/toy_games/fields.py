"""What each field of the 'toy_games' config does: one line each, shown by ``--help``."""

from ebm_gan.runner import field_docs

DESCRIPTIONS = {
    **field_docs.COMMON,
    "num_steps": "update steps per run (an alternating round is one step)",
    "num_seeds": "initial points per game, method and learning rate",
    "learning_rates": "η of every player (a critic's: η · critic_lr_ratio)",
    "methods": "the optimisers and update schemes compared",
    "games": "the toy games played",
    "critic_lr_ratio": "two timescales: the critic's η over the generator's",
    "optimizer_options.ogda.alpha": "ogda: the weight α on the current gradient",
    "optimizer_options.ogda.beta": "ogda: the weight β on the previous gradient",
    "optimizer_options.ogda.first_step": "ogda: the previous gradient at step 0",
    "optimizer_options.optimistic_adam.b1": "optimistic_adam: the first moment's decay",
    "optimizer_options.optimistic_adam.b2": "optimistic_adam: the second moment's decay",
    "bilinear.dim_x": "bilinear min_x max_y xᵀAy + bᵀx + cᵀy: dimension of x",
    "bilinear.dim_y": "bilinear: dimension of y (the critic)",
    "bilinear.matrix": "bilinear: A is the identity, random, or given in bilinear.A",
    "bilinear.A": "bilinear: A, shape (dim_x, dim_y), used when matrix=given",
    "bilinear.matrix_seed": "bilinear: the seed of a random A",
    "bilinear.b": "bilinear: b (empty: zeros)",
    "bilinear.c": "bilinear: c (empty: zeros)",
    "bilinear.init_radius": "bilinear: initial distance from the equilibrium",
    "dirac_gan.loss": "Dirac-GAN D(x) = ψx, G = θ, data at 0: the GAN loss",
    "dirac_gan.penalty": "Dirac-GAN: γ of the zero-centred penalty γ/2·ψ²",
    "dirac_gan.init_radius": "Dirac-GAN: initial distance from the equilibrium",
    "quadratic.dim": "½xᵀPx + xᵀAy − ½yᵀQy: dimension of x and of y",
    "quadratic.mu": "quadratic: the strong convexity P = Q ⪰ mu·I",
    "quadratic.coupling": "quadratic: the scale of the coupling A",
    "quadratic.matrix_seed": "quadratic: the seed of the random matrices",
    "quadratic.init_radius": "quadratic: initial distance from the equilibrium",
}

"""docs/theory.md identities on a finite domain, where every expectation is an exact sum.

Domain: K points x_k ∈ ℝ. Energy U_m(x) = m0·x + m1·x² + m2·sin(3x) (any smooth
family works); q_m = softmax(U_m) over the K points; the generator is a free
softmax q_f = softmax(f). All gradients are exact; the tolerances (1e-5 in
float32 on O(1) quantities) are a few hundred ulps of accumulated rounding.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import objectives as ob

K = 7
XS = jnp.linspace(-1.5, 1.5, K)
P = jax.nn.softmax(jnp.array([0.3, -0.2, 1.0, 0.1, -1.0, 0.5, 0.0]))  # p_data
M0 = jnp.array([0.4, -0.7, 0.9])
F0 = jnp.array([0.5, 0.1, -0.3, 0.8, 0.0, -0.6, 0.2])
TOL = 1e-5


def energy(m):
  return m[0] * XS + m[1] * XS ** 2 + m[2] * jnp.sin(3 * XS)


def log_q(u):
  return u - jax.nn.logsumexp(u)


def entropy(q):
  return -jnp.sum(q * jnp.log(q))


def neg_kl(a, b):
  return -jnp.sum(a * (jnp.log(a) - jnp.log(b)))


def test_mle_gradient_is_positive_minus_negative_phase():
  """(1.1): ∇_m[−KL(p‖q_m)] = E_p[∇U] − E_{q_m}[∇U]."""
  true = jax.grad(lambda m: neg_kl(P, jnp.exp(log_q(energy(m)))))(M0)
  q_m = jax.lax.stop_gradient(jnp.exp(log_q(energy(M0))))
  phases = jax.grad(lambda m: ob.l1(energy(m), energy(m), P, q_m))(M0)
  np.testing.assert_allclose(phases, true, atol=TOL)
  assert np.linalg.norm(true) > 0.1  # a non-trivial gradient, not 0 = 0


def test_naive_gradient_differs_by_a_covariance():
  """(1.2): ∇_m(E_p U − E_{q_m} U) − ∇_m L = −Cov_{q_m}(U, ∇_m U) ≠ 0."""
  true = jax.grad(lambda m: neg_kl(P, jnp.exp(log_q(energy(m)))))(M0)
  naive = jax.grad(lambda m: ob.l1(energy(m), energy(m), P, jnp.exp(log_q(energy(m)))))(M0)
  u = energy(M0)
  q = jnp.exp(log_q(u))
  du = jax.jacobian(energy)(M0)  # [K, 3]
  cov = jnp.sum(q[:, None] * (u - q @ u)[:, None] * (du - q @ du), axis=0)
  np.testing.assert_allclose(naive - true, -cov, atol=TOL)
  assert np.linalg.norm(naive - true) > 0.05


def test_energy_gradient_of_l1_equals_that_of_l3():
  """(3.2): ∇_m L1 = ∇_m L3 for a fixed generator q_f."""
  q_f = jax.nn.softmax(F0)
  g1 = jax.grad(lambda m: ob.l1(energy(m), energy(m), P, q_f))(M0)
  g3 = jax.grad(lambda m: ob.l3(energy(m), energy(m), entropy(q_f), P, q_f))(M0)
  np.testing.assert_allclose(g1, g3, atol=TOL)
  assert np.linalg.norm(g1) > 0.1


def test_generator_gradient_of_l2_is_minus_that_of_l3():
  """(3.3): ∇_f L2 = −∇_f L3, and L2 is exactly −KL(q_f‖q_m) with log Z_m."""
  u = energy(M0)
  log_z = jax.nn.logsumexp(u)

  def l2(f):
    q_f = jax.nn.softmax(f)
    return ob.l2(u, entropy(q_f), log_z, gen_weights=q_f)

  def l3(f):
    q_f = jax.nn.softmax(f)
    return ob.l3(u, u, entropy(q_f), P, q_f)

  np.testing.assert_allclose(l2(F0), neg_kl(jax.nn.softmax(F0), jnp.exp(log_q(u))), atol=TOL)
  np.testing.assert_allclose(jax.grad(l2)(F0), -jax.grad(l3)(F0), atol=TOL)
  assert np.linalg.norm(jax.grad(l2)(F0)) > 0.1


def test_generator_optimum_of_l3_is_q_m():
  """min_f L3 ⇔ q_f = q_m (docs/theory.md §3): at f = U_m the f-gradient of L3 vanishes."""
  u = energy(M0)
  grad = jax.grad(lambda f: ob.l3(u, u, entropy(jax.nn.softmax(f)), P, jax.nn.softmax(f)))(u)
  np.testing.assert_allclose(grad, 0.0, atol=TOL)


def test_l4_decouples_the_players():
  """(5.1): L4 = L1 + L2 and ∇_m L4 does not depend on f."""
  log_z = lambda m: jax.nn.logsumexp(energy(m))

  def l4(m, f):
    q_f = jax.nn.softmax(f)
    return ob.l4(energy(m), entropy(q_f), log_z(m), data_weights=P)

  def l1_plus_l2(m, f):
    q_f = jax.nn.softmax(f)
    u = energy(m)
    return ob.l1(u, u, P, q_f) + ob.l2(u, entropy(q_f), log_z(m), gen_weights=q_f)

  np.testing.assert_allclose(l4(M0, F0), l1_plus_l2(M0, F0), atol=TOL)
  g_a = jax.grad(l4)(M0, F0)
  g_b = jax.grad(l4)(M0, -2.0 * F0 + 1.0)
  np.testing.assert_allclose(g_a, g_b, atol=TOL)
  # ... whereas L3's energy gradient does move with f (the coupling L4 loses).
  g3 = lambda f: jax.grad(lambda m: ob.l3(energy(m), energy(m), 0.0, P, jax.nn.softmax(f)))(M0)
  assert np.linalg.norm(g3(F0) - g3(-2.0 * F0 + 1.0)) > 0.1


def test_l5_is_minus_reverse_kl():
  """(5.2): L5 = −KL(q_m‖q_f) when expectations are taken under q_m."""
  u = energy(M0)
  q_m, q_f = jnp.exp(log_q(u)), jax.nn.softmax(F0)
  value = ob.l5(jnp.log(q_f), u, jax.nn.logsumexp(u), model_weights=q_m)
  np.testing.assert_allclose(value, neg_kl(q_m, q_f), atol=TOL)


def test_vanilla_gan_is_a_weighted_cross_entropy():
  """(6.2): V(D, G) equals the cross-entropy form exactly; D* = p/(p+q) maximises it."""
  q = jax.nn.softmax(F0)
  d = jax.nn.sigmoid(jnp.array([0.2, -1.0, 0.7, 1.5, -0.3, 0.0, 2.0]))
  np.testing.assert_allclose(ob.vanilla_gan_value(d, d, P, q), ob.gan_cross_entropy_value(P, q, d),
                             atol=TOL)
  d_star = P / (P + q)
  value = lambda logits: ob.vanilla_gan_value(jax.nn.sigmoid(logits), jax.nn.sigmoid(logits), P, q)
  logit_star = jnp.log(P) - jnp.log(q)  # logit D* = log p − log q: the energy view
  np.testing.assert_allclose(jax.nn.sigmoid(logit_star), d_star, atol=TOL)
  np.testing.assert_allclose(jax.grad(value)(logit_star), 0.0, atol=TOL)
  # V(D*) = −log 4 + 2·JSD(p, q) (Goodfellow et al. 2014, Thm 1), a closed form.
  mix = 0.5 * (P + q)
  jsd = 0.5 * (-neg_kl(P, mix)) + 0.5 * (-neg_kl(q, mix))
  np.testing.assert_allclose(value(logit_star), -np.log(4.0) + 2 * jsd, atol=TOL)
  assert value(logit_star) > value(logit_star + 0.3)


@pytest.mark.parametrize("name, real, fake, d_loss, g_loss", [
    # softplus(0)=log 2=0.693147, softplus(2)=2.126928, softplus(−2)=0.126928,
    # softplus(1)=1.313262, softplus(−1)=0.313262.
    # minimax D: mean softplus(−real) + mean softplus(fake)
    #   = (0.693147+0.126928)/2 + (0.693147+0.313262)/2 = 0.913242; G: −(0.693147+0.313262)/2.
    ("minimax", [0.0, 2.0], [0.0, -1.0], 0.913242, -0.503204),
    # non-saturating G: mean softplus(−fake) = (0.693147 + 1.313262)/2 = 1.003204.
    ("non_saturating", [0.0, 2.0], [0.0, -1.0], 0.913242, 1.003204),
    # Wasserstein D: mean fake − mean real = −0.5 − 1 = −1.5; G: −mean fake = 0.5.
    ("wasserstein", [0.0, 2.0], [0.0, -1.0], -1.5, 0.5),
    # hinge D: mean relu(1−real) + mean relu(1+fake) = (1+0)/2 + (1+0)/2 = 1.0.
    ("hinge", [0.0, 2.0], [0.0, -1.0], 1.0, 0.5),
    # LSGAN D: ½mean((real−1)²) + ½mean(fake²) = ½(1+1)/2 + ½(0+1)/2 = 0.75;
    #       G: ½mean((fake−1)²) = ½(1+4)/2 = 1.25.
    ("least_squares", [0.0, 2.0], [0.0, -1.0], 0.75, 1.25),
])
def test_gan_losses_on_fixed_logits(name, real, fake, d_loss, g_loss):
  loss = ob.GAN_LOSSES.get(name)
  real, fake = jnp.array(real), jnp.array(fake)
  np.testing.assert_allclose(loss.discriminator(real, fake), d_loss, atol=1e-5)
  np.testing.assert_allclose(loss.generator(fake), g_loss, atol=1e-5)


def test_one_sided_label_smoothing():
  """Target 1 − s for real: at s = 0.1, real logit 0: 0.9·log 2 + 0.1·log 2 = log 2 (per sample)."""
  loss = ob.GAN_LOSSES.get("minimax").discriminator
  # real logit 2: 0.9·softplus(−2) + 0.1·softplus(2) = 0.114235 + 0.212693 = 0.326928.
  np.testing.assert_allclose(loss(jnp.array([2.0]), jnp.array([-50.0]), 0.1), 0.326928, atol=1e-5)


def test_penalties_on_a_quadratic_energy():
  """U(x) = −½‖x‖²: ∇U = −x, so R1 = (γ/2)E‖x‖², and WGAN-GP on ‖x̂‖ closed forms."""
  fn = lambda x: -0.5 * jnp.sum(x ** 2, axis=1)
  x_data = jnp.array([[1.0, 0.0], [0.0, 2.0]])   # ‖x‖² = 1, 4
  x_gen = jnp.array([[3.0, 0.0], [0.0, 0.0]])    # ‖x‖² = 9, 0
  key = jax.random.PRNGKey(0)
  np.testing.assert_allclose(ob.score_penalty(0.2)(fn, x_data, x_gen, key), 0.1 * 2.5, rtol=1e-6)
  np.testing.assert_allclose(ob.r2_penalty(0.2)(fn, x_data, x_gen, key), 0.1 * 4.5, rtol=1e-6)
  same = jnp.array([[2.0, 0.0], [0.0, 3.0]])     # x̂ = x whatever ε: ‖∇U‖ = 2, 3
  np.testing.assert_allclose(ob.wgan_gp_penalty(10.0)(fn, same, same, key), 10 * (1 + 4) / 2,
                             rtol=1e-5)

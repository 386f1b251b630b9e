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


# ---------------------------------------------------------------------------
# (3.2), (3.3), (5.1) against closed forms written out here in float64 numpy,
# never against another library function. A second energy family, nonlinear in m
# so that ∇_m U depends on m:
#   V_m(x) = m0·x + m1·x² + sin(m2·x),   ∇_m V = (x, x², x·cos(m2·x))  (by hand).
# The generator is the free softmax q_f = softmax(f) over the K points; closed forms
#   ∇_f E_{q_f}[v] = q ⊙ (v − E_q v)   (v independent of f),
#   ∇_f Σ q log q = q ⊙ (log q − E_q log q).

M1 = np.array([0.4, -0.7, 1.3])
F1 = np.array([0.5, 0.1, -0.3, 0.8, 0.0, -0.6, 0.2])
F2 = np.linspace(-1.5, 1.5, K)   # a second generator, tilted towards large x
XS64, P64 = np.asarray(XS, np.float64), np.asarray(P, np.float64)


def v_energy(m):
  """V_m on the K points, in jnp (what the library sees)."""
  return m[0] * XS + m[1] * XS ** 2 + jnp.sin(m[2] * XS)


def v_np(m):
  return m[0] * XS64 + m[1] * XS64 ** 2 + np.sin(m[2] * XS64)


def dv_np(m):
  """∇_m V_m(x_k) by hand: [K, 3]."""
  return np.stack([XS64, XS64 ** 2, XS64 * np.cos(m[2] * XS64)], axis=1)


def softmax_np(f):
  e = np.exp(f - f.max())
  return e / e.sum()


def lse_np(u):
  return u.max() + np.log(np.sum(np.exp(u - u.max())))


def l3_written_out(m, f):
  """L3 = Σ p V − Σ q_f V + Σ q_f log q_f (docs/theory.md (3.1)), float64."""
  q, u = softmax_np(f), v_np(m)
  return P64 @ u - q @ u + q @ np.log(q)


def l3_grad_m_closed(m, f):
  """(3.2): ∇_m L3 = ∇_m L1 = E_p[∇V] − E_{q_f}[∇V] (H(q_f) has no m)."""
  return P64 @ dv_np(m) - softmax_np(f) @ dv_np(m)


def l2_grad_f_closed(m, f):
  """∇_f L2, L2 = Σ q V − log Z + H(q): q ⊙ (V − log q − E_q[V − log q])."""
  q = softmax_np(f)
  w = v_np(m) - np.log(q)
  return q * (w - q @ w)


def _l3_library(m, f):
  q_f = jax.nn.softmax(f)
  return ob.l3(v_energy(m), v_energy(m), entropy(q_f), P, q_f)


def _l2_written_out_jnp(m, f):
  """L2 = Σ q_f V − log Σ exp V − Σ q_f log q_f, written out (no library call)."""
  q = jax.nn.softmax(f)
  u = v_energy(m)
  return jnp.sum(q * u) - jax.nn.logsumexp(u) - jnp.sum(q * jnp.log(q))


# Measured (jax 0.10.2, CPU, float32 library vs the float64 closed forms, generators F1
# and F2): values ≤ 1.6e-7 off (L3 at F2; about one ulp of an O(1) value), gradients
# ≤ 8.1e-8. Bounds at 2×: VALUE_TOL = 3e-7, GRAD_TOL = 2e-7 — six orders of magnitude
# below every failure mode measured in the tests' docstrings.
VALUE_TOL = 3e-7
GRAD_TOL = 2e-7


@pytest.mark.parametrize("f", [F1, F2], ids=["F1", "F2"])
def test_energy_gradient_of_l3_is_the_closed_form_phase_difference(f):
  """(3.2): ∇_m of the library's L3 (exact weights, entropy depending on f) equals
  E_p[∇V] − E_{q_f}[∇V] computed by hand; the value equals the written-out L3.

  ‖closed form‖ = 0.10 at F1, 1.00 at F2; it differs between F1 and F2 by
  ‖E_{q_F1}∇V − E_{q_F2}∇V‖ = 1.01, so a q_f taken from the wrong generator fails
  by far more than GRAD_TOL; an entropy term that depended on m would add its own
  m-gradient."""
  m32, f32 = jnp.asarray(M1, jnp.float32), jnp.asarray(f, jnp.float32)
  np.testing.assert_allclose(_l3_library(m32, f32), l3_written_out(M1, f), atol=VALUE_TOL)
  g = jax.grad(_l3_library)(m32, f32)
  np.testing.assert_allclose(g, l3_grad_m_closed(M1, f), atol=GRAD_TOL)
  assert np.linalg.norm(l3_grad_m_closed(M1, f)) > 0.05  # not 0 = 0


@pytest.mark.parametrize("f", [F1, F2], ids=["F1", "F2"])
def test_generator_gradient_of_l3_is_minus_that_of_l2(f):
  """(3.3): ∇_f L3(library) = −∇_f L2, both sides independent of the library: L2 is
  written out here (Σ q V − log Z + H) and its gradient is also checked against the
  closed form q ⊙ (w − E_q w), w = V − log q.

  Dropping the entropy from either side changes ∇_f by ‖q ⊙ (log q − E_q log q)‖ =
  0.17 at F1 and 0.31 at F2 (measured; max entry 0.14 and 0.27), ~10⁶× GRAD_TOL."""
  m32, f32 = jnp.asarray(M1, jnp.float32), jnp.asarray(f, jnp.float32)
  closed = l2_grad_f_closed(M1, f)
  np.testing.assert_allclose(jax.grad(_l2_written_out_jnp, argnums=1)(m32, f32), closed,
                             atol=GRAD_TOL)
  np.testing.assert_allclose(jax.grad(_l3_library, argnums=1)(m32, f32), -closed,
                             atol=GRAD_TOL)
  q = softmax_np(f)
  entropy_part = q * (np.log(q) - q @ np.log(q))
  assert np.linalg.norm(entropy_part) > 0.1  # the entropy term is visible in the check


def test_joint_directions_on_the_finite_domain_are_the_closed_forms():
  """docs/theory.md §8: one jax.grad over Σ_i ℓ_i(θ_i, sg θ_{−i}) with the energy
  minimising −L1 and the generator −L2 gives d_m = −(E_p∇V − E_q∇V) and d_f = −∇_f L2,
  by hand.

  Without the stop_gradient the energy would also get ∂(−L2)/∂m = −E_q∇V + E_{q_m}∇V
  and the generator ∂(−L1)/∂f = q ⊙ (V − E_q V); measured (plain jax.grad of the sum),
  that moves d_m by 0.79 and d_f by 0.57. Measured error with it: ≤ 5.5e-8."""
  from ebm_gan import game
  losses = {
      "energy": lambda p: -ob.l1(v_energy(p["energy"]), v_energy(p["energy"]), P,
                                 jax.nn.softmax(p["generator"])),
      "generator": lambda p: -ob.l2(v_energy(p["energy"]),
                                    entropy(jax.nn.softmax(p["generator"])),
                                    jax.nn.logsumexp(v_energy(p["energy"])),
                                    gen_weights=jax.nn.softmax(p["generator"])),
  }
  params = {"energy": jnp.asarray(M1, jnp.float32), "generator": jnp.asarray(F1, jnp.float32)}
  _, d, _ = game.joint_directions(losses, params)
  np.testing.assert_allclose(d["energy"], -l3_grad_m_closed(M1, F1), atol=GRAD_TOL)
  np.testing.assert_allclose(d["generator"], -l2_grad_f_closed(M1, F1), atol=GRAD_TOL)


def test_generator_optimum_of_l3_is_q_m():
  """min_f L3 ⇔ q_f = q_m (docs/theory.md §3): at f = U_m the f-gradient of L3 vanishes."""
  u = energy(M0)
  grad = jax.grad(lambda f: ob.l3(u, u, entropy(jax.nn.softmax(f)), P, jax.nn.softmax(f)))(u)
  np.testing.assert_allclose(grad, 0.0, atol=TOL)


@pytest.mark.parametrize("with_log_z", [False, True], ids=["log_z_dropped", "log_z_kept"])
def test_l4_energy_gradient_is_the_closed_form_for_every_generator(with_log_z):
  """(5.1): L4 = L1 + L2 = E_p[V] − E_{q_f}[log q_f] (log Z_m dropped, as docs/theory.md (5.1) writes
  it): ∇_m L4 = E_p[∇_m V], by an exact hand sum, for two unrelated generators F1, F2.
  With log Z_m kept (``log_z`` passed), ∇_m L4 = E_p[∇V] − E_{q_m}[∇V], q_m = softmax V:
  the maximum-likelihood gradient, again with no f in it. ∇_f L4 = ∇_f H(q_f) by hand.

  Whereas L3's energy gradient moves with f: by ‖(q_F1 − q_F2)ᵀ ∇V‖ = 1.01 (closed form),
  so a q_f-weighted term left in ∇_m L4 would fail by ~10⁶× GRAD_TOL. Measured errors:
  values ≤ 1.1e-7, gradients ≤ 4.8e-8."""
  m32 = jnp.asarray(M1, jnp.float32)
  u, du = v_np(M1), dv_np(M1)

  def l4(m, f):
    q_f = jax.nn.softmax(f)
    log_z = jax.nn.logsumexp(v_energy(m)) if with_log_z else 0.0
    return ob.l4(v_energy(m), entropy(q_f), log_z, data_weights=P)

  expected_m = P64 @ du - (softmax_np(u) @ du if with_log_z else 0.0)
  for f in (F1, F2):
    f32 = jnp.asarray(f, jnp.float32)
    q = softmax_np(f)
    value = P64 @ u - q @ np.log(q) - (lse_np(u) if with_log_z else 0.0)
    np.testing.assert_allclose(l4(m32, f32), value, atol=VALUE_TOL)
    g_m, g_f = jax.grad(l4, argnums=(0, 1))(m32, f32)
    np.testing.assert_allclose(g_m, expected_m, atol=GRAD_TOL)
    np.testing.assert_allclose(g_f, -q * (np.log(q) - q @ np.log(q)), atol=GRAD_TOL)
  coupling = l3_grad_m_closed(M1, F1) - l3_grad_m_closed(M1, F2)
  assert np.linalg.norm(coupling) > 0.5  # 1.01


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

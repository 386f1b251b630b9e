"""Tests of ebm_gan.optim: agreement with optax, hand-written update rules, errors.

All transforms are checked under ``jax.jit``. Tolerances: where our transform
performs the same float32 operations as optax the results agree to 1e-6
(a few ulps); hand-written rules in float32 agree to rtol 1e-6 for O(1) values.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ebm_gan import optim
from ebm_gan import schemes
from ebm_gan.errors import InvalidArgumentError


def _grads(seed, n=6):
  """A sequence of n random gradient pytrees (a dict of two arrays)."""
  keys = jax.random.split(jax.random.key(seed), n)
  return [{"w": jax.random.normal(k, (3, 2)), "b": jax.random.normal(k, (4,)) * 2.0}
          for k in keys]


def _run(tx, grads):
  """Feeds the gradients to ``tx`` (jitted); returns the list of updates."""
  params = jax.tree.map(jnp.zeros_like, grads[0])
  state, out = tx.init(params), []
  update = jax.jit(tx.update)
  for g in grads:
    u, state = update(g, state, params)
    out.append(u)
  return out


def _close(a, b, rtol=1e-6, atol=1e-6):
  chex.assert_trees_all_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.6, 0.3)])
def test_ogda_matches_optax_optimistic_gradient_descent(alpha, beta):
  grads = _grads(0)
  ours = _run(optim.ogda(0.05, alpha=alpha, beta=beta), grads)
  ref = _run(optax.optimistic_gradient_descent(0.05, alpha=alpha, beta=beta), grads)
  _close(ours, ref)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.7, 0.4)])
def test_ogda_zero_history_matches_hand_written_rule(alpha, beta):
  # u_t = -η((α+β) g_t − β g_{t−1}) with g_{−1} = 0.
  eta, grads = 0.03, _grads(1)
  ours = _run(optim.ogda(eta, alpha=alpha, beta=beta, first_step="zero"), grads)
  prev = jax.tree.map(jnp.zeros_like, grads[0])
  for g, u in zip(grads, ours):
    expected = jax.tree.map(lambda gt, gp: -eta * ((alpha + beta) * gt - beta * gp), g, prev)
    _close(u, expected)
    prev = g


def test_ogda_first_step_conventions_differ_only_at_step_zero():
  eta, alpha, beta, grads = 0.1, 1.0, 1.0, _grads(2)
  rep = _run(optim.ogda(eta, alpha, beta, "repeat"), grads)
  zero = _run(optim.ogda(eta, alpha, beta, "zero"), grads)
  _close(rep[0], jax.tree.map(lambda g: -eta * alpha * g, grads[0]))          # g_{-1} = g_0
  _close(zero[0], jax.tree.map(lambda g: -eta * (alpha + beta) * g, grads[0]))  # g_{-1} = 0
  _close(rep[1:], zero[1:])


def test_gda_is_plain_descent():
  grads = _grads(3)
  _close(_run(optim.gda(0.2), grads), [jax.tree.map(lambda g: -0.2 * g, g) for g in grads])
  _close(_run(optim.make("sgd", 0.2), grads), _run(optim.gda(0.2), grads))


def test_optimistic_adam_matches_optax_and_its_own_chain():
  grads = _grads(4)
  kw = dict(b1=0.5, b2=0.9, eps=1e-8, alpha=1.0, beta=1.0)
  ours = _run(optim.optimistic_adam(1e-2, **kw), grads)
  ref = _run(optax.optimistic_adam_v2(1e-2, nesterov=False, **kw), grads)
  _close(ours, ref)
  # The fallback (installed optax without optimistic_adam_v2) is this chain.
  chain = optax.chain(optax.scale_by_adam(b1=0.5, b2=0.9, eps=1e-8, nesterov=False),
                      optim.scale_by_optimistic(1.0, 1.0, "repeat"),
                      optax.scale_by_learning_rate(1e-2))
  _close(ours, _run(chain, grads))


def test_optimistic_adam_zero_history_first_step():
  # Adam's first direction is m̂/(√v̂+ε) = g/(|g|+ε) ≈ sign(g); zero history doubles it.
  g = _grads(5, 1)
  u = _run(optim.optimistic_adam(0.1, first_step="zero"), g)[0]
  _close(u, jax.tree.map(lambda x: -0.1 * 2.0 * x / (jnp.abs(x) + 1e-8), g[0]), rtol=1e-5)


def test_adam_is_the_gan_adam():
  grads = _grads(6)
  _close(_run(optim.adam(2e-4), grads), _run(optax.adam(2e-4, b1=0.5, b2=0.999), grads))


def test_second_update_call_does_not_retrace():
  tx = optim.ogda(0.1, first_step="zero")
  grads = _grads(7, 3)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def update(g, state):
    return tx.update(g, state)

  state = tx.init(grads[0])
  for g in grads:  # three calls, one trace
    _, state = update(g, state)


def test_ogda_minimises_a_parabola():
  # f(w) = ½‖w − 3‖²: OGDA (η = 0.1) contracts by ρ < 1 per step; 300 steps ≪ 1e-6.
  tx = optim.ogda(0.1)
  w, state = jnp.zeros(2), tx.init(jnp.zeros(2))
  for _ in range(300):
    u, state = tx.update(w - 3.0, state)
    w = optax.apply_updates(w, u)
  np.testing.assert_allclose(w, 3.0, atol=1e-5)


def test_make_refuses_unknown_name_with_key_value_and_choices():
  with pytest.raises(InvalidArgumentError) as e:
    optim.make("adamw", 0.1, key="optimizer.name")
  msg = str(e.value)
  assert "optimizer.name='adamw'" in msg
  for name in ("gda", "ogda", "optimistic_adam", "adam", "sgd"):
    assert name in msg


@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan"), float("inf"), "0.1", True])
def test_make_refuses_bad_learning_rates(lr):
  with pytest.raises(InvalidArgumentError, match=r"optimizer\.learning_rate=.*positive"):
    optim.make("ogda", lr)


def test_make_accepts_schedules_and_refuses_unknown_options():
  assert isinstance(optim.make("ogda", optax.constant_schedule(0.1)), optax.GradientTransformation)
  with pytest.raises(InvalidArgumentError, match=r"opt\.momentum=0\.9.*allowed: alpha, beta, first_step"):
    optim.make("ogda", 0.1, key="opt", momentum=0.9)
  with pytest.raises(InvalidArgumentError, match=r"opt\.first_step='two'.*repeat, zero"):
    optim.make("ogda", 0.1, key="opt", first_step="two")
  with pytest.raises(InvalidArgumentError, match="first_step"):
    optim.ogda(0.1, first_step="two")


def test_per_player_is_an_immutable_mapping():
  txs = optim.per_player({"energy": optim.ogda(4e-4), "generator": optim.ogda(1e-4)})
  assert sorted(txs) == ["energy", "generator"] and len(txs) == 2
  with pytest.raises(TypeError):
    txs["energy"] = optim.gda(1.0)  # pytype: disable=unsupported-operands
  with pytest.raises(AttributeError):
    txs.extra = 1
  hash(txs)
  with pytest.raises(InvalidArgumentError, match="not an optax.GradientTransformation"):
    optim.per_player({"energy": 0.1})


def test_player_transforms():
  tx = optim.gda(0.1)
  assert optim.player_transforms(tx, ["a", "b"]) == {"a": tx, "b": tx}
  pp = optim.per_player({"b": optim.gda(0.2), "a": tx})
  assert list(optim.player_transforms(pp, ["a", "b"])) == ["a", "b"]
  with pytest.raises(InvalidArgumentError, match=r"missing: \['c'\]"):
    optim.player_transforms(pp, ["a", "b", "c"])
  with pytest.raises(InvalidArgumentError, match=r"unknown: \['b'\]"):
    optim.player_transforms(pp, ["a"])
  with pytest.raises(InvalidArgumentError, match="per_player"):
    optim.player_transforms(0.1, ["a"])


def test_two_timescale_learning_rates_in_a_scheme():
  # One simultaneous step on f = xy (x min, y max): u_x = −η_x y, u_y = +η_y x.
  def directions(p, key):
    del key
    return {"x": p["y"], "y": -p["x"]}, None

  txs = optim.player_transforms(optim.per_player({"x": optim.gda(0.1), "y": optim.gda(0.4)}),
                                ["x", "y"])
  update = jax.jit(schemes.make_update(directions, txs, "simultaneous"))
  params = {"x": jnp.array([1.0]), "y": jnp.array([2.0])}
  states = {p: txs[p].init(params[p]) for p in params}
  new, _, _, _ = update(params, states, jax.random.key(0))
  np.testing.assert_allclose(new["x"], [1.0 - 0.1 * 2.0], rtol=1e-6)
  np.testing.assert_allclose(new["y"], [2.0 + 0.4 * 1.0], rtol=1e-6)

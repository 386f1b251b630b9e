"""Data-parallel steps with shard_map on 4 fake CPU devices (conftest: chex.set_n_cpu_devices).

What a data-parallel step must be: on device i the step sees shard i of the
batch and draws its noise from fold_in(key, i); the update applies the MEAN of
the four shards' directions (docs/theory.md §8), identically on every device.
The references below compute the four shards' directions one by one on one
device with the game's own ``value_and_directions`` and average them by hand.
"""

import jax
import numpy as np
import pytest

from ebm_gan import entropy, game, models, objectives, optim, parallel, train

N = 4


@pytest.fixture(scope="module", autouse=True)
def _need_devices():
  if jax.device_count() < N:
    pytest.skip("needs 4 devices (tests/conftest.py calls chex.set_n_cpu_devices(4))")


def _game(estimator):
  return game.EBMGame(models.MLPEnergy((8,)), models.MLPGenerator(2, 2, (8,)),
                      entropy=estimator, penalty=objectives.score_penalty(0.1))


def _mean_of_shards(g, params, shards, key):
  ds = [g.value_and_directions(params, s, jax.random.fold_in(key, i))[1]
        for i, s in enumerate(shards)]
  return jax.tree.map(lambda *d: sum(d) / len(d), *ds)


ESTIMATORS = {"knn": entropy.KNN(), "mi": entropy.MutualInformation(hidden=(8,)),
              "noisy": entropy.NoisyGenerator(num_samples=4, proposal_hidden=(8,))}


@pytest.mark.slow  # 4 s (each case) of the fast subset's 157 s; it stays under 2 min
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_one_step_applies_the_mean_of_the_shards_directions(name):
  """θ' = θ − η·(1/4)Σ_i d_i(shard_i, fold_in(key, i)); replicated outputs, for every estimator.

  Measured: max |θ' − reference| = 1.2e-7 (kNN), 3e-8 (noisy), 0 (MI): float32 sums in
  another order; asserted 3e-7.
  """
  g, lr = _game(ESTIMATORS[name]), 0.1
  tx = optim.gda(lr)
  x = jax.random.normal(jax.random.PRNGKey(0), (N * 8, 2))
  state = train.init_state(g, tx, jax.random.PRNGKey(1), x[:8])
  mesh = parallel.device_mesh(N)
  step = jax.jit(parallel.data_parallel(train.make_train_step(g, tx, axis_name=parallel.AXIS),
                                        mesh, sharded_args=1))
  new, metrics = step(state, x)
  key = jax.random.fold_in(jax.random.fold_in(state.key, 0), 0)
  mean = _mean_of_shards(g, state.params, np.split(np.asarray(x), N), key)
  expect = jax.tree.map(lambda p, d: p - lr * d, state.params, mean)
  for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expect)):
    np.testing.assert_allclose(a, b, rtol=0, atol=3e-7)
  assert np.ndim(metrics["l1"]) == 0 and int(new.step) == 1


class _BatchQuadraticGame:
  """min_x max_y f = mean_b [a_b x·y + ½ c_b (|x|² − |y|²)]: no noise, a mean over the batch.

  The mean of equal-size shard means is the global mean, so a data-parallel step on 4
  shards must equal the one-device step on the whole batch, whatever the scheme.
  """
  players, critics = ("x", "y"), ("y",)

  def value_and_directions(self, params, batch, key):
    del key
    def f(p):
      a, c = batch[:, 0], batch[:, 1]
      return jax.numpy.mean(a * (p["x"] @ p["y"]) + 0.5 * c * (p["x"] @ p["x"] - p["y"] @ p["y"]))
    values, directions, _ = game.joint_directions({"x": f, "y": lambda p: -f(p)}, params)
    return {f"loss_{k}": v for k, v in values.items()}, directions


@pytest.mark.parametrize("scheme", ["simultaneous", "alternating", "extragradient"])
def test_four_devices_equal_one_device_on_the_global_batch(scheme):
  """5 OGDA steps on 4 devices (shards of 8) = 5 steps on one device (batch of 32).

  Measured: max difference 6e-8 (float32 reassociation of the means); asserted 1.5e-7.
  """
  g, tx = _BatchQuadraticGame(), optim.ogda(0.05)
  params = {"x": jax.numpy.array([1.0, -0.5]), "y": jax.numpy.array([0.3, 0.8])}
  state = train.TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params,
                           opt_states={p: tx.init(params[p]) for p in g.players},
                           key=jax.random.PRNGKey(0))
  batch = jax.random.uniform(jax.random.PRNGKey(3), (N * 8, 2), minval=0.5, maxval=1.5)
  one = jax.jit(train.make_train_step(g, tx, scheme, critic_steps=2))
  many = jax.jit(parallel.data_parallel(
      train.make_train_step(g, tx, scheme, critic_steps=2, axis_name=parallel.AXIS),
      parallel.device_mesh(N), sharded_args=1))
  a = b = state
  for _ in range(5):
    a, _ = one(a, batch)
    b, _ = many(b, batch)
  for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(u, v, rtol=0, atol=1.5e-7)
  assert float(jax.numpy.abs(a.params["x"] - state.params["x"]).max()) > 1e-2  # it moved


def test_chunk_trains_each_device_on_its_slice_of_the_global_batch():
  """A one-step chunk on 4 devices: device i keeps rows 8i..8i+7 of sampler(data_key, 32),
  the batch a one-device run of batch size 32 draws."""
  g, lr = _game(entropy.KNN()), 0.1
  tx = optim.gda(lr)
  sampler = lambda k, n: jax.random.normal(k, (n, 2))
  state = train.init_state(g, tx, jax.random.PRNGKey(1), sampler(jax.random.PRNGKey(0), 8))
  mesh = parallel.device_mesh(N)
  chunk = jax.jit(parallel.data_parallel(train.make_chunk(
      train.make_train_step(g, tx, axis_name=parallel.AXIS), 1, sampler, 8,
      axis_name=parallel.AXIS), mesh))
  new, metrics = chunk(jax.device_put(state, parallel.replicated(mesh)))
  assert int(new.step) == 1 and metrics["l1"].shape == (1,)
  key = jax.random.fold_in(jax.random.fold_in(state.key, 0), 0)
  shards = np.split(np.asarray(sampler(train.data_key(state), N * 8)), N)
  mean = _mean_of_shards(g, state.params, shards, key)
  expect = jax.tree.map(lambda p, d: p - lr * d, state.params, mean)
  for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expect)):
    np.testing.assert_allclose(a, b, rtol=0, atol=3e-7)


def test_the_mesh_refuses_more_devices_than_there_are():
  with pytest.raises(ValueError, match=r"devices=5 .* sees 4 device"):
    parallel.device_mesh(5)
  with pytest.raises(ValueError, match="not divisible by 4 devices"):
    parallel.check_divisible(30, 4)

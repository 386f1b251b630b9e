"""The entropy estimators as the runner builds them: config blocks, names, the comparison sweep."""

import dataclasses
import os

import ml_collections
import pytest

from ebm_gan import entropy
from ebm_gan.models import flows
from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import config as runner_config
from ebm_gan.runner.registry import ConfigError
from experiments.configs import entropy_compare


def test_from_config_builds_every_estimator_with_its_own_settings():
  cfg = ml_collections.ConfigDict({"name": "noisy",
                                   "noisy": {"sigma": 0.3, "proposal_hidden": [8]}})
  est = runner_config.build_entropy(cfg)
  assert est == entropy.NoisyGenerator(sigma=0.3, proposal_hidden=(8,))
  for name, cls in [("flow", entropy.Flow), ("mi", entropy.MutualInformation),
                    ("knn", entropy.KNN), ("none", entropy.NoEntropy),
                    ("jacobian", entropy.JacobianEntropy), ("ssge", entropy.SpectralStein),
                    ("score", entropy.DenoisingScore)]:
    assert isinstance(runner_config.build_entropy({"name": name}), cls)
  assert set(runner_config.ENTROPY_ESTIMATORS.names()) == {
      "flow", "noisy", "mi", "knn", "none", "jacobian", "ssge", "score"}
  assert runner_config.build_entropy({"name": "ssge", "ssge": {"num_eigen": 5}}) == (
      entropy.SpectralStein(num_eigen=5))
  with pytest.raises(ConfigError, match="entropy.mi.temperature"):
    runner_config.build_entropy({"name": "mi", "mi": {"temperature": 1.0}})
  with pytest.raises(ConfigError, match="entropy.noisy.posterior"):
    runner_config.build_entropy({"name": "noisy", "noisy": {"posterior": "gibbs"}})
  with pytest.raises(ConfigError, match="entropy.mi.bound"):
    runner_config.build_entropy({"name": "mi", "mi": {"bound": "nce"}})
  with pytest.raises(ConfigError, match="entropy.noisy.sigma"):
    runner_config.build_entropy({"name": "noisy", "noisy": {"sigma": 0.0}})


def test_entropy_compare_config_covers_every_estimator_and_setting():
  """The comparison's config has a block per estimator naming exactly its settings, and
  every sweep member resolves and builds (the flow member with the flow generator)."""
  config = entropy_compare.get_config()
  for name in runner_config.ENTROPY_ESTIMATORS.names():
    fields = {f.name for f in dataclasses.fields(runner_config.ENTROPY_ESTIMATORS.get(name, key="entropy.name"))}
    assert set(config.entropy[name].keys()) == fields, name
  members = []
  entropy_compare.sweep(lambda **overrides: members.append(list(overrides.items())))
  assert len(members) == 2 * len(runner_config.ENTROPY_ESTIMATORS.names())
  path = os.path.abspath(entropy_compare.__file__)
  for member in members:
    exp = runner_config.build(cli.resolve_config(path, member))
    assert isinstance(exp.game.entropy,
                      runner_config.ENTROPY_ESTIMATORS.get(dict(member)["entropy.name"],
                                                           key="entropy.name"))
  flow_member = next(m for m in members if dict(m)["entropy.name"] == "flow")
  assert isinstance(runner_config.build(cli.resolve_config(path, flow_member)).game.generator,
                    flows.CouplingFlow)


def test_the_default_run_uses_the_validated_estimator_and_batch():
  """tests/lib/test_entropy_gradients.py validates kNN k = 1 at batch 512: the default run's."""
  from experiments.configs import default
  config = default.get_config()
  assert (config.entropy.name, config.entropy.knn.k, config.batch_size) == ("knn", 1, 512)

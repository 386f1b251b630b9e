"""The library's compiled chunk against a PyTorch EBM-GAN round of the same mathematics.

The PyTorch round is written here from docs/theory.md (§2–4): the energy U_m
(a log-unnormalised density), the generator G_f, MEG's statistics network
T_ψ(x, z) on [x, z] with one rolled negative (the Jensen–Shannon bound), the
zero-centred R1 penalty (γ/2)·E_p‖∇_x U(x)‖² on data (a double backward):

  energy     loss −(E_p[U] − E_q[U]) + (γ/2) E_p‖∇_x U‖²
  statistics loss −I_JSD(T) on (G(z), z) against (G(z), z rolled by one)
  generator  loss −(E_q[U] + I_JSD(T))

one generator sample per evaluation (live in the generator's loss, detached in
the critics'), one data batch per round. Two settings:

  default  experiments/configs/default.py: MLPs 256×3 (energy LeakyReLU(0.2),
           generator ReLU), latent 2, T 256×2 ReLU, γ = 0.03, optimistic Adam
           β=(0.5, 0.9), lr 3e-4 generator / 1e-3 critics, simultaneous, batch 256
  meg      MEG's toy setting: energy, T (LeakyReLU) and generator (ReLU) 3×512,
           batch 256, 5 critic steps per generator step (alternating), Adam
           β=(0.5, 0.9) lr 1e-4, penalty 0.1·E‖∇U‖² (γ = 0.2)

Optimistic Adam in torch is written here (multi-tensor ``torch._foreach_*``):
r_t = m̂_t/(√v̂_t + ε), u_t = −η(2r_t − r_{t−1}), r_{−1} = r_0; plain Adam is
``torch.optim.Adam`` (foreach). The JAX side is ``eg.make_chunk`` of
``eg.make_train_step`` (the runner's compiled chunk, built from the same config;
its metrics include per-player norms, which the torch round does not compute).
Both are timed on CPU with the same thread count (torch.set_num_threads = the
cores this process may use, the size of XLA's CPU thread pool; OMP_WAIT_POLICY
defaults to PASSIVE, see below) in interleaved A/B repetitions in one process;
the table gives medians.

  python benchmarks/torch_reference.py [--settings default,meg] [--steps 200] [--repeats 5] [--quick]

Needs the ``bench`` extra (``pip install -e '.[bench]'``, CPU wheel:
``pip install torch --index-url https://download.pytorch.org/whl/cpu``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# libgomp's worker threads spin while waiting by default; on a shared machine that makes
# torch's 2-thread round 3-4x slower than its 1-thread round (measured at load ~14: 3.4 vs
# 12.7 rounds/s at the default setting; passive: 11.7). XLA's pool does not spin this way.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
  import torch
except ImportError:
  torch = None

import jax
import optax

from benchmarks import experiment
SETTINGS = {
    "default": dict(energy=(256,) * 3, generator=(256,) * 3, statistics=(256, 256),
                    statistics_act="relu", gamma=0.03, optimizer="optimistic_adam",
                    lr=3e-4, critic_lr=1e-3, critic_steps=1, scheme="simultaneous"),
    "meg": dict(energy=(512,) * 3, generator=(512,) * 3, statistics=(512,) * 3,
                statistics_act="leaky_relu", gamma=0.2, optimizer="adam",
                lr=1e-4, critic_lr=1e-4, critic_steps=5, scheme="alternating"),
}
LATENT, B1, B2, EPS = 2, 0.5, 0.9, 1e-8


# ----------------------------------------------------------------------------- torch side
def _mlp(widths, d_in, d_out, act):
  layers, d = [], d_in
  for w in widths:
    layers += [torch.nn.Linear(d, w),
               torch.nn.LeakyReLU(0.2) if act == "leaky_relu" else torch.nn.ReLU()]
    d = w
  return torch.nn.Sequential(*layers, torch.nn.Linear(d, d_out))


class OptimisticAdam:
  """θ ← θ − η(2r_t − r_{t−1}), r_t = m̂_t/(√v̂_t + ε) Adam's direction, r_{−1} = r_0."""

  def __init__(self, params, lr):
    self.params, self.lr, self.t, self.prev = list(params), lr, 0, None
    self.m = [torch.zeros_like(p) for p in self.params]
    self.v = [torch.zeros_like(p) for p in self.params]

  @torch.no_grad()
  def step(self, grads):
    self.t += 1
    torch._foreach_mul_(self.m, B1)
    torch._foreach_add_(self.m, grads, alpha=1 - B1)
    torch._foreach_mul_(self.v, B2)
    torch._foreach_addcmul_(self.v, grads, grads, value=1 - B2)
    denom = torch._foreach_sqrt(self.v)
    torch._foreach_div_(denom, math.sqrt(1 - B2 ** self.t))
    torch._foreach_add_(denom, EPS)
    r = torch._foreach_div(self.m, denom)
    torch._foreach_div_(r, 1 - B1 ** self.t)
    update = torch._foreach_mul(r, 2.0)
    torch._foreach_sub_(update, r if self.prev is None else self.prev)
    torch._foreach_add_(self.params, update, alpha=-self.lr)
    self.prev = r


class PlainAdam:
  """``torch.optim.Adam`` (β = (0.5, 0.9)) fed the given gradients."""

  def __init__(self, params, lr):
    self.params = list(params)
    self.opt = torch.optim.Adam(self.params, lr=lr, betas=(B1, B2), eps=EPS, foreach=True)

  def step(self, grads):
    for p, g in zip(self.params, grads):
      p.grad = g
    self.opt.step()


class TorchRound:
  """One EBM-GAN round (simultaneous, or ``critic_steps`` critic sub-steps then the generator)."""

  def __init__(self, s, batch, seed=0):
    torch.manual_seed(seed)
    self.s, self.batch = s, batch
    self.nets = {"energy": _mlp(s["energy"], 2, 1, "leaky_relu"),
                 "generator": _mlp(s["generator"], LATENT, 2, "relu"),
                 "statistics": _mlp(s["statistics"], 2 + LATENT, 1, s["statistics_act"])}
    opt = OptimisticAdam if s["optimizer"] == "optimistic_adam" else PlainAdam
    self.opts = {p: opt(n.parameters(), s["lr"] if p == "generator" else s["critic_lr"])
                 for p, n in self.nets.items()}
    g = 2.0 * torch.arange(-2, 3, dtype=torch.float32)
    self.means = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    self.groups = ([("energy", "statistics", "generator")] if s["scheme"] == "simultaneous"
                   else [("energy", "statistics")] * s["critic_steps"] + [("generator",)])

  def data(self):
    """A 25-gaussians batch: grid means {−4, −2, 0, 2, 4}², std 0.05."""
    idx = torch.randint(0, 25, (self.batch,))
    return self.means[idx] + 0.05 * torch.randn(self.batch, 2)

  def directions(self, x, players):
    """Each moving player's gradient of its own loss, from one shared generator sample."""
    U, G, T = self.nets["energy"], self.nets["generator"], self.nets["statistics"]
    z = torch.randn(self.batch, LATENT)
    with torch.set_grad_enabled("generator" in players):
      x_gen = G(z)
    u_gen = U(x_gen)[:, 0]
    t_joint = T(torch.cat([x_gen, z], 1))[:, 0]
    t_marginal = T(torch.cat([x_gen, torch.roll(z, 1, 0)], 1))[:, 0]
    jsd = (-torch.nn.functional.softplus(-t_joint)).mean() - torch.nn.functional.softplus(
        t_marginal).mean()
    grads, losses = {}, {}
    if "energy" in players:
      xd = x.detach().requires_grad_(True)
      u_data = U(xd)[:, 0]
      (score,) = torch.autograd.grad(u_data.sum(), xd, create_graph=True)
      losses["energy"] = (-(u_data.mean() - u_gen.mean())
                          + 0.5 * self.s["gamma"] * score.pow(2).sum(1).mean())
    if "statistics" in players:
      losses["statistics"] = -jsd
    if "generator" in players:
      losses["generator"] = -(u_gen.mean() + jsd)
    for i, p in enumerate(players):
      grads[p] = torch.autograd.grad(losses[p], list(self.nets[p].parameters()),
                                     retain_graph=i < len(players) - 1)
    return grads, losses

  def round(self):
    x = self.data()
    first = {}
    for group in self.groups:
      grads, losses = self.directions(x, group)
      for p in group:
        self.opts[p].step(grads[p])
        first.setdefault(p, losses[p].detach())
    return first

  def run(self, n):
    for _ in range(n):
      self.round()


# ----------------------------------------------------------------------------- JAX side
def jax_chunk(s, batch, n):
  """The runner's game for this setting (the default config + overrides), its compiled
  n-step chunk and initial state."""
  exp = experiment.default_experiment([
      ("model.energy_hidden", str(s["energy"])), ("model.generator_hidden", str(s["generator"])),
      ("entropy.mi.hidden", str(s["statistics"])), ("entropy.mi.activation", s["statistics_act"]),
      ("penalty.weight", str(s["gamma"])), ("optimizer.name", s["optimizer"]),
      ("optimizer.lr", str(s["lr"])), ("optimizer.critic_lr", str(s["critic_lr"])),
      ("scheme", s["scheme"]), ("critic_steps", str(s["critic_steps"])),
      ("batch_size", str(batch)),
      ("negative_phase.mala_steps", "0")])  # the PyTorch round has no MALA negative phase
  tx = None
  if s["optimizer"] == "adam":  # the config's adam has b2 = 0.999; MEG's is 0.9
    tx = optax.adam(s["lr"], b1=B1, b2=B2, eps=EPS)
  return experiment.default_chunk(exp, n, tx)


def interleaved_rates(torch_round, compiled, state, n, repeats):
  """Median rounds/s of torch and of the JAX chunk, timed in alternating repetitions."""
  torch_round.run(max(2, n // 10))  # warm-up
  state, _ = jax.block_until_ready(compiled(state))
  t_torch, t_jax = [], []
  for _ in range(repeats):
    t = time.perf_counter()
    torch_round.run(n)
    t_torch.append(time.perf_counter() - t)
    t = time.perf_counter()
    state, _ = jax.block_until_ready(compiled(state))
    t_jax.append(time.perf_counter() - t)
  return n / statistics.median(t_torch), n / statistics.median(t_jax)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--settings", default="default,meg")
  p.add_argument("--steps", type=int, default=200, help="rounds per timed repetition "
                 "(JAX: steps per dispatch)")
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--quick", action="store_true", help="10 rounds, 3 repeats (< 1 min)")
  a = p.parse_args(argv)
  if torch is None:
    print("benchmarks/torch_reference.py needs PyTorch, which is not installed. Install the "
          "bench extra: pip install -e '.[bench]' (CPU wheel: pip install torch --index-url "
          "https://download.pytorch.org/whl/cpu).", file=sys.stderr)
    return 2
  if a.quick:
    a.steps, a.repeats = 10, 3
  threads = len(os.sched_getaffinity(0))
  torch.set_num_threads(threads)
  print(f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, "
        f"{threads} threads each (torch.set_num_threads; XLA's CPU pool: the usable cores), "
        f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, batch {a.batch}, {a.steps} rounds per repetition, {a.repeats} interleaved repetitions, "
        f"load average {os.getloadavg()[0]:.2f}")
  print("| setting | torch rounds/s | JAX rounds/s | JAX/torch |")
  print("|---|---|---|---|")
  for name in a.settings.split(","):
    s = SETTINGS[name]
    compiled, state = jax_chunk(s, a.batch, a.steps)
    rt, rj = interleaved_rates(TorchRound(s, a.batch), compiled, state, a.steps, a.repeats)
    print(f"| {name} | {rt:.1f} | {rj:.1f} | {rj / rt:.2f} |", flush=True)
  print(f"load average after: {os.getloadavg()[0]:.2f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())

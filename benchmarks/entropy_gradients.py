"""Every entropy estimator's value and gradient against the exact H and ∇H (docs/theory.md (4.18)).

Cases (``ebm_gan.entropy.validation``): the linear-Gaussian generator x = Az + b in d = 2 and
d = 16 (H in closed form), an overlapping six-component Gaussian mixture and 25-gaussians'
sharp 25-mode layout, both as push-forwards of a 3-D latent (H by quadrature). For each
estimator setting, the extra player (statistics network, posterior proposal, score network)
is first fitted for ``--fit-steps`` Adam steps with the generator fixed, then ``--repeats``
batches give:

  Ĥ − H          the value's bias (for σ > 0, H is that of x = G(z) + σε)
  cos(E∇̂, ∇H)   the cosine between the MEAN gradient and the exact one: the estimator's bias
  E cos(∇̂, ∇H)  the mean cosine of one batch's gradient: what one training step sees
  ‖E∇̂‖/‖∇H‖    the mean gradient's size relative to the exact one
  ms/step        one batch's Ĥ, ∇Ĥ and the extra players' gradients (compiled, this machine)

σ of the noise-injected settings is given relative to the case's smallest length scale s
(a component's std, or A's smallest singular value).

  python benchmarks/entropy_gradients.py                       # every case and setting
  python benchmarks/entropy_gradients.py --quick               # fewer fits and repeats
  python benchmarks/entropy_gradients.py --out results/entropy_gradients.md
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # pylint: disable=g-import-not-at-top

from ebm_gan import entropy  # pylint: disable=g-import-not-at-top
from ebm_gan.entropy import validation  # pylint: disable=g-import-not-at-top

BATCH = 256


def settings(case):
  """``(estimator name, setting, batch, estimator)`` rows for one case."""
  s = case.scale
  rows = []
  if case.name.startswith("linear"):
    rows.append(("flow", "exact", BATCH, entropy.Flow()))
  rows.append(("jacobian", "change of variables", BATCH, entropy.JacobianEntropy()))
  for k, batch in ((1, 64), (1, BATCH), (3, BATCH), (10, BATCH), (1, 1024), (3, 1024)):
    rows.append(("knn", f"k={k}", batch, entropy.KNN(k)))
  rows.append(("ssge", "median bandwidth", BATCH, entropy.SpectralStein()))
  for scale in (1.0, 2.0):
    rows.append(("ssge", f"neighbour bandwidth ×{scale:g}", BATCH,
                 entropy.SpectralStein(bandwidth="neighbour", bandwidth_scale=scale)))
  for rel, bound in ((0.0, "jsd"), (0.0, "dv"), (0.2, "jsd"), (1.0, "jsd"), (1.0, "dv")):
    rows.append(("mi", f"σ={rel:g}s, {bound}", BATCH,
                 entropy.MutualInformation(sigma=rel * s, bound=bound)))
  for rel in (0.2, 1.0):
    rows.append(("noisy", f"σ={rel:g}s, importance (learned)", BATCH,
                 entropy.NoisyGenerator(sigma=rel * s)))
  rows.append(("noisy", "σ=1s, importance (local)", BATCH,
               entropy.NoisyGenerator(sigma=s, proposal="local")))
  rows.append(("noisy", "σ=1s, mala", BATCH, entropy.NoisyGenerator(sigma=s, posterior="mala")))
  for rel in (0.2, 1.0):
    rows.append(("score", f"σ={rel:g}s", BATCH, entropy.DenoisingScore(sigma=rel * s)))
  return rows


CASES = {"lg2": lambda: validation.linear_gaussian(2), "lg16": lambda: validation.linear_gaussian(16),
         "mix6": validation.overlapping_mixture, "mix25": validation.grid_mixture}


def _provenance() -> list[str]:
  rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.abspath(__file__)), check=False).stdout.strip()
  dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                         capture_output=True, text=True, check=False).stdout.strip()
  load = os.getloadavg()
  return [f"- Command: `python {' '.join(sys.argv)}`",
          f"- Commit: `{rev}{'-dirty' if dirty else ''}`, {datetime.date.today()}",
          f"- Versions: jax {jax.__version__}, Python {platform.python_version()}, "
          f"{jax.default_backend()} ({os.cpu_count()} cores)",
          f"- Load average at the end (1, 5, 15 min): {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default=",".join(CASES), help=f"of {', '.join(CASES)}")
  parser.add_argument("--estimators", default="", help="only these names (comma-separated)")
  parser.add_argument("--fit-steps", type=int, default=3000)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--quick", action="store_true", help="300 fit steps, 5 repeats")
  parser.add_argument("--out", default="", help="also write the table to this markdown file")
  args = parser.parse_args(argv)
  if args.quick:
    args.fit_steps, args.repeats = 300, 5
  only = set(filter(None, args.estimators.split(",")))
  header = ("| case | estimator | setting | batch | Ĥ | H | Ĥ − H | cos(E∇̂, ∇H) | E cos(∇̂, ∇H) "
            "| ‖E∇̂‖/‖∇H‖ | ms/step |")
  lines = [header, "|" + "---|" * 11]
  print(header, flush=True)
  start = time.perf_counter()
  for key in args.cases.split(","):
    case = CASES[key]()
    for name, setting, batch, est in settings(case):
      if only and name not in only:
        continue
      r = validation.measure(est, case, batch, args.repeats, args.fit_steps)
      line = (f"| {case.name} | {name} | {setting} | {batch} | {r['value']:.3f} | {r['true']:.3f} "
              f"| {r['bias']:+.3f} | {r['cos_mean']:.3f} | {r['cos_batch']:.3f} "
              f"| {r['norm_ratio']:.2f} | {r['ms_per_step']:.2f} |")
      lines.append(line)
      print(line, flush=True)
  total = time.perf_counter() - start
  print(f"total {total:.0f} s")
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write("# Entropy estimators against the exact gradient\n\n")
      f.write(f"Made by `benchmarks/entropy_gradients.py` ({total:.0f} s); what each column means "
              "is in its docstring. s is the case's smallest length scale.\n\n")
      f.write("\n".join(lines) + "\n\n" + "\n".join(_provenance()) + "\n")


if __name__ == "__main__":
  main()

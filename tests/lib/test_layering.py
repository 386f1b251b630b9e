"""The layering the house keeps: the library imports no runner, and its tests import neither.

``ebm_gan/`` outside ``ebm_gan/runner/`` is the library (it knows no argv, files or
ConfigDicts); ``tests/lib/`` tests it alone, so that a user who imports only the library gets
what these tests check. The check reads every import statement (top level or inside a
function) with ``ast``, so a late ``from experiments...`` inside a test counts too.
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORBIDDEN = ("ebm_gan.runner", "experiments")


def _imports(path: str) -> list[str]:
  """Every module named by an import statement of the file at ``path``."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  names = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names += [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
  return names


def _python_files(folder: str, skip: str | None = None) -> list[str]:
  out = []
  for root, dirs, files in os.walk(os.path.join(REPO, folder)):
    dirs[:] = [d for d in dirs if os.path.join(root, d) != skip and d != "__pycache__"]
    out += [os.path.join(root, f) for f in files if f.endswith(".py")]
  return sorted(out)


def _forbidden(path: str) -> list[str]:
  return [n for n in _imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize("folder, skip", [("ebm_gan", os.path.join(REPO, "ebm_gan", "runner")),
                                          ("tests/lib", None)])
def test_the_library_and_its_tests_import_no_runner(folder, skip):
  files = _python_files(folder, skip)
  assert len(files) > 10, files  # the walk found the folder
  found = {os.path.relpath(p, REPO): _forbidden(p) for p in files}
  assert not {p: names for p, names in found.items() if names}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
  source = tmp_path / "t.py"
  source.write_text("def f():\n  from experiments.configs import default\n")
  assert _forbidden(str(source)) == ["experiments.configs", "experiments.configs.default"]

"""The docs are true: README's and docs/library.md's Python examples run as written, each on
its own, and every launcher command in README.md, BUILD.md, docs/, results/ and the config
files' docstrings parses and builds (``--dry-run``)."""

import contextlib
import os
import re
import shlex

import pytest

from ebm_gan.runner import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(REPO, "experiments", "configs", "default.py")
CONFIGS = os.path.join(REPO, "experiments", "configs")

def _markdown(folder):
  return [os.path.join(folder, n) for n in sorted(os.listdir(os.path.join(REPO, folder)))
          if n.endswith(".md")]


DOCS = (["README.md", "BUILD.md"] + _markdown("docs") + _markdown("results")
        + [os.path.join("experiments", "configs", n)
           for n in sorted(os.listdir(CONFIGS)) if n.endswith(".py")])
README_LINES = 200  # the front door reads in five minutes (issue 29)
LAUNCH = "python -m experiments.run"


def _read(name):
  with open(os.path.join(REPO, name), encoding="utf-8") as f:
    return f.read()


def python_blocks(text: str) -> list[str]:
  """The fenced ```python blocks of a markdown text."""
  return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def launch_commands(text: str, launch: str = LAUNCH) -> list[str]:
  """Every ``python -m experiments.run ...`` (or ``launch``) command, backslash
  continuations joined."""
  text = re.sub(r"\\\n\s*", " ", text)
  out = []
  for line in text.splitlines():
    if launch in line:
      command = re.split(r"&&|`|\||\s#", line[line.index(launch):])[0].strip()
      if "..." not in command:  # not a usage template such as "--config ... --workdir ..."
        out.append(command)
  return out


COMMANDS = [(doc, c) for doc in DOCS for c in launch_commands(_read(doc))]


def test_the_docs_have_commands_and_examples():
  assert len(COMMANDS) >= 8 and len(python_blocks(_read("README.md"))) >= 2
  assert {doc for doc, _ in COMMANDS} >= {"README.md", "docs/runner.md", "results/images.md"}


def test_the_readme_is_a_front_door():
  """At most 200 lines, and its links to the rest of the docs lead to files that exist."""
  text = _read("README.md")
  assert len(text.splitlines()) <= README_LINES
  for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
    assert os.path.exists(os.path.join(REPO, target)), target


@pytest.mark.parametrize("doc,command", COMMANDS, ids=[f"{d}:{c[len(LAUNCH):][:60]}"
                                                        for d, c in COMMANDS])
def test_every_documented_command_parses_and_builds(doc, command, tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(REPO)
  args = shlex.split(command)[len(LAUNCH.split()):]
  if "--workdir" in args:  # the documented folder itself (a dry run writes nothing there)
    args += ["--dry-run"]
  else:
    args += ["--dry-run", f"--workdir={tmp_path / 'run'}"]
  with _mock_tfds_if_needed(command):
    assert cli.main(args, DEFAULT) == 0, (doc, command, capsys.readouterr().err)


def _mock_tfds_if_needed(command: str):
  """The tfds image configs need prepared folders; their commands are checked on mock data."""
  if not re.search(r"mnist|cifar10", command) or "stacked_digits" in command:
    return contextlib.nullcontext()
  tfds = pytest.importorskip("tensorflow_datasets")
  return tfds.testing.mock_data(num_examples=8)


EXAMPLES = [(doc, i) for doc in ("README.md", "docs/library.md")
            for i in range(len(python_blocks(_read(doc))))]


@pytest.mark.slow  # ~8 s alone per README block (compilation), 2–3× on a loaded machine
@pytest.mark.parametrize("doc,index", EXAMPLES, ids=[f"{d}:{i}" for d, i in EXAMPLES])
def test_python_examples_run_as_written_each_on_its_own(doc, index, capsys):
  """Each block in a fresh namespace (a reader copies one block, not the page); each prints
  what it shows and asserts it."""
  namespace = {"__name__": "docs"}
  block = python_blocks(_read(doc))[index]
  exec(compile(block, doc, "exec"), namespace)  # pylint: disable=exec-used
  if doc == "README.md":
    assert "assert " in block and capsys.readouterr().out.strip()


PARTS = "python -m experiments.parts"
PARTS_COMMANDS = [(doc, c) for doc in DOCS for c in launch_commands(_read(doc), PARTS)
                  if "--config experiments/" in c]  # not the usage line or a prose mention


@pytest.mark.parametrize("doc,command", PARTS_COMMANDS,
                         ids=[f"{d}:{c[len(PARTS):][:60]}" for d, c in PARTS_COMMANDS])
def test_every_documented_parts_command_names_a_sweep_and_its_key(doc, command, monkeypatch):
  """``experiments.parts`` commands: their config declares a sweep whose members set ``--by``
  (what the command checks before it starts a part)."""
  from experiments import parts
  monkeypatch.chdir(REPO)
  args = shlex.split(command)[len(PARTS.split()):]
  config, by = args[args.index("--config") + 1], args[args.index("--by") + 1]
  assert len(parts.part_values(config, by)) >= 2, (doc, command)


def test_the_docs_have_parts_commands():
  assert {doc for doc, _ in PARTS_COMMANDS} >= {"docs/runner.md"}

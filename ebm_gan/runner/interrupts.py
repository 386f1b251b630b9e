"""Ctrl-C and SIGTERM at any phase of a run: never inside XLA, never swallowed.

Python runs a signal handler in the main thread between two bytecodes, and C++ code
that polls for signals (XLA's compiler does) lets it run there too. Raising
KeyboardInterrupt from inside a compilation left XLA's threads working on a program that
Python had dropped, and the interpreter crashed at exit (SIGSEGV, exit 139); raised inside
jax's garbage-collection callback it was printed as "Exception ignored" and lost, and the
run went on to exit 0.

So the launcher's handler looks at the main thread's stack first. Outside jax, jaxlib,
orbax, TensorBoard's writer (with its multiprocessing queue) and imports it raises at once
(``KeyboardInterrupt``, or :class:`Terminated` for SIGTERM), and the run stops as it always
did (the training loop saves the last finished step). Inside them it only records the
signal, says so on stderr, and a watcher thread delivers it again as soon as the main thread
is back in the launcher's own code; :func:`deliver` (called at
every phase line and after every chunk) raises it too. A second Ctrl-C while one is held
changes nothing: the process stays alive until XLA returns, then exits cleanly.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time

# Code a signal must not interrupt: XLA's compiler and runtime, orbax's writers, any import
# (a C extension half-initialised by an interrupted import aborted the interpreter at exit:
# protobuf's, imported by TensorBoard's writer), and TensorBoard's writer and the
# multiprocessing queue it feeds its writer thread through (interrupted there, the thread
# never saw the writer's stop and the interpreter hung at exit joining it: 4 of 65 Ctrl-Cs
# under load; tests/runner/test_resume.py, test_signals.py).
_HELD_IN = tuple(f"{os.sep}{name}{os.sep}" for name in (
    "jax", "jaxlib", "orbax", "tensorboardX", "multiprocessing")) + ("<frozen importlib",)
_POLL_S = 0.02


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


_pending: list[int] = []  # the first signal held, until it is raised
_watcher: list[threading.Thread] = []


def _exception(signum: int) -> KeyboardInterrupt:
  return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _inside_held_code(frame) -> bool:
  """Whether any frame of the stack runs code of ``_HELD_IN`` (jax, jaxlib, orbax,
  TensorBoard's writer and its queue, an import)."""
  while frame is not None:
    if any(part in frame.f_code.co_filename for part in _HELD_IN):
      return True
    frame = frame.f_back
  return False


def _watch() -> None:
  """Re-sends the held signal to the main thread whenever it is outside held code."""
  main = threading.main_thread()
  while _pending and main.is_alive():
    frame = sys._current_frames().get(main.ident)  # pylint: disable=protected-access
    if frame is not None and not _inside_held_code(frame):
      _thread.interrupt_main(_pending[0])
    time.sleep(_POLL_S)


def _handler(signum: int, frame) -> None:
  """Raises the signal's exception now, or holds it while XLA or orbax runs."""
  if not _inside_held_code(frame if frame is not None else sys._getframe(1)):  # pylint: disable=protected-access
    signum = _pending.pop(0) if _pending else signum
    _pending.clear()
    raise _exception(signum)
  if not _pending:
    _pending.append(signum)
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    os.write(2, f"\n{name}: stopping as soon as XLA returns (it is compiling or "
                "running a step)...\n".encode())
  if not any(w.is_alive() for w in _watcher):
    _watcher[:] = [threading.Thread(target=_watch, name="interrupt-watcher", daemon=True)]
    _watcher[0].start()


def install(early=()) -> dict:
  """Installs the handler for SIGINT and SIGTERM in the main thread; returns the previous
  handlers (for :func:`restore`). SIGINT stays ignored when it was ignored (a background
  job). ``early``: signals caught before the launcher was imported, held until now."""
  if threading.current_thread() is not threading.main_thread():
    return {}
  previous = {}
  for sig in (signal.SIGINT, signal.SIGTERM):
    if sig == signal.SIGINT and signal.getsignal(sig) == signal.SIG_IGN:
      continue
    previous[sig] = signal.signal(sig, _handler)
  _pending[:] = list(early)[:1]
  return previous


def restore(previous: dict) -> None:
  """Puts back the handlers :func:`install` replaced, forgets a held signal, and waits for
  the watcher thread to end (a daemon thread still running while the interpreter shuts
  down aborted it: "FATAL: exception not rethrown")."""
  for sig, handler in previous.items():
    signal.signal(sig, handler)
  _pending.clear()
  for watcher in _watcher:
    watcher.join()
  _watcher.clear()


def deliver() -> None:
  """Raises a held signal's exception now (call it where stopping is safe)."""
  if _pending and threading.current_thread() is threading.main_thread():
    signum = _pending.pop(0)
    _pending.clear()
    raise _exception(signum)

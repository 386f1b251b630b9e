"""The game protocol: what the train step, the schemes and the runner ask of a game.

:class:`Game` lists the members; :func:`check_game` names the ones a game lacks at the
entry point that needs them; :func:`player_losses` turns a game's losses into plain
per-player functions (docs/theory.md §8). :class:`ebm_gan.EBMGame` and
:class:`ebm_gan.GANGame` implement it.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Protocol

import jax

Params = dict[str, Any]


class Game(Protocol):
  """What the train step, the schemes and the runner ask of a game (docs/theory.md §8).

  ``losses(x_data, key, penalty_scale)`` returns per-player losses ``(params, shared) ->
  (loss, metrics)`` and ``shared`` (owner → ``fn(params)``, the generator's sample);
  :func:`player_losses` turns them into plain ``(params, batch, key) -> (loss, aux)``
  functions, and ``value_and_directions`` into every player's direction in one
  ``jax.grad``. ``has_energy``: the critic is an energy U (log q_m ∝ U), whose density the
  runner can draw and measure; a GAN's logit is not one.
  """
  players: tuple[str, ...]
  critics: tuple[str, ...]
  latent_dim: int
  has_energy: ClassVar[bool]

  def init(self, key: jax.Array, x_example: jax.Array) -> Params: ...
  def sample(self, params: Params, key: jax.Array, n: int): ...
  def critic_fn(self, params: Params) -> Callable[[jax.Array], jax.Array]: ...
  def losses(self, x_data: jax.Array, key: jax.Array, penalty_scale=1.0): ...
  def value_and_directions(self, params, x_data, key, players=None, penalty_scale=1.0): ...
  def summarise(self, value: dict) -> dict: ...


_ATTRIBUTES = ("players", "critics", "latent_dim", "has_energy")
_METHODS = ("init", "sample", "critic_fn", "losses", "value_and_directions", "summarise")


def check_game(game, needs: tuple[str, ...] = _ATTRIBUTES + _METHODS, by: str = "") -> None:
  """Raises one ``TypeError`` naming every member of :class:`Game` in ``needs`` that ``game``
  lacks (``by``: who needs them, for the message).

  The train step, the schemes and the runner use these members deep inside traced code,
  where a missing one would surface as an ``AttributeError`` far from its cause; each entry
  point checks what it uses first (docs/theory.md §8): the train step ``players``,
  ``critics`` and ``value_and_directions``; :func:`ebm_gan.train.init_state` ``players`` and
  ``init``; :func:`player_losses` ``players`` and ``losses``.
  """
  missing = [m if m in _ATTRIBUTES else f"{m}()" for m in needs
             if not (hasattr(game, m) if m in _ATTRIBUTES else callable(getattr(game, m, None)))]
  if missing:
    raise TypeError(
        f"{type(game).__name__} lacks {', '.join(missing)}{f', needed by {by}' if by else ''}. "
        f"A game (the protocol ebm_gan.Game) has the attributes {', '.join(_ATTRIBUTES)} "
        f"and the methods {', '.join(m + '()' for m in _METHODS)}.")


def player_losses(game: Game, penalty_scale=1.0) -> dict[str, Callable]:
  """Each player's loss as a pure function ``(params, batch, key) -> (loss, aux)``.

  ``params`` is the whole parameter dict; ``jax.grad(loss, has_aux=True)(params, x, key)
  [player]`` is that player's direction, the same number ``game.value_and_directions``
  gives from one ``jax.grad`` over every player (docs/theory.md (8.1); tests/lib/test_game.py
  checks the two agree). Add a term to one and differentiate it in your own code; the
  generator's sample is drawn inside each function, from ``key`` as the game draws it.
  """
  check_game(game, ("players", "losses"), "ebm_gan.player_losses")

  def make(player):
    def loss(params, batch, key):
      losses, shared = game.losses(batch, key, penalty_scale)
      return losses[player](params, {owner: fn(params) for owner, fn in shared.items()})
    return loss
  return {player: make(player) for player in game.players}

"""What a run does: the 'ebm_gan' program (train a game) and the 'toy_games' program (rates)."""

"""Reviewing a model's mistakes: verdicts kept in SQLite, suspected label errors, counterfactual edits."""

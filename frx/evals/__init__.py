"""Evaluators. `classification` computes top-1 accuracy and loss over a held-out split."""

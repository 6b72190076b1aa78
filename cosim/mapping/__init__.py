"""Weights to conductances: partition into tiles, differential pairs, non-idealities, im2col patches."""

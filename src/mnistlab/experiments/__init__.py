"""Experiments: the run store, the training pipeline, figures, reports, compare, sweeps and recipes."""

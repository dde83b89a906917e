"""Linear models with our own solvers."""

"""Models written from scratch in NumPy: forward, loss and backward by hand."""

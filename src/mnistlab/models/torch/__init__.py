"""PyTorch models: the shared training loop, the tutorial's LeNet and our CNN."""

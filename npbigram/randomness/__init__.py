"""Where a run's randomness comes from: NumPy streams and PyTorch's generator replayed."""

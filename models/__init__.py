"""The Keras model, its tuning and training entry points, and its serving export."""

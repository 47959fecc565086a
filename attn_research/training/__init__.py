"""Training: optimizers, data-parallel steps, checkpoints, the run directory, the loop."""

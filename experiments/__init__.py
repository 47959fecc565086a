"""Entry points (train, variants) and experiment configs."""

"""Sweeps of experiments.train: trials from a config's `get_sweep` (`sweep`), run as local
processes (`local`) or as a SLURM job array (`slurm`). The entry point is experiments.sweep.
"""

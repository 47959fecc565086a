"""Sweep launchers: local processes, SLURM job arrays, multi-host."""

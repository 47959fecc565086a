"""Datasets (TFDS builders), vocabularies and the batching pipeline."""

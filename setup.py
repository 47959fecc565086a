"""attn_research: attention variants for RNN encoder-decoder models in JAX/Flax."""

import setuptools

setuptools.setup(
  name="attn_research",
  version="0.1.0",
  description="Attention variants in RNN encoder-decoder models: train, compare, reproduce.",
  packages=setuptools.find_packages(include=["attn_research*", "experiments*", "launch*"]),
  python_requires=">=3.11",
  install_requires=[
    "jax>=0.10.2",
    "flax>=0.12.8",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    "absl-py>=2.5.1",
    "ml_collections>=1.1.0",
    "tensorflow-datasets>=4.9.10",
    "array_record>=0.8.6",
    "importlib_resources>=6.0",  # tensorflow-datasets needs it for in-package builders
    "babel>=2.18.0",
    "sacrebleu>=2.6.0",
    "sacremoses>=0.2.0",
    "sentencepiece>=0.2.3",
    "matplotlib>=3.11.2",
    "numpy>=2.4",
    "requests>=2.32",
    "tqdm>=4.70.1",
    "tensorboardX>=2.6.5",  # TensorBoard event files without TensorFlow
  ],
  extras_require={
    "wandb": ["wandb>=0.31"],  # tracking.wandb
    "mlflow": ["mlflow-skinny>=3.18"],  # tracking.mlflow
    "test": [
      "pytest>=9.2.0",
      "pytest-xdist>=3.8.0",
      "ruff>=0.17.5",
      "chex>=0.1.92",
    ],
  },
)

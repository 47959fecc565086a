import numpy as np

from attn_research.training.steps import token_nll


def test_token_nll_with_and_without_label_smoothing():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 3, 5))
  targets = rng.integers(0, 5, (2, 3))
  mask = np.array([[True, True, False], [True, False, False]])
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
  total, tokens = token_nll(logits, targets, mask)
  np.testing.assert_allclose(total, nll[mask].sum(), rtol=1e-5)
  assert tokens == 3
  eps = 0.1
  smoothed = (1 - eps) * nll - eps * logp.mean(-1)  # ε spread over the vocabulary
  total, _ = token_nll(logits, targets, mask, label_smoothing=eps)
  np.testing.assert_allclose(total, smoothed[mask].sum(), rtol=1e-5)

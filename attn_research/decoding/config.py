"""`decode`: how a run decodes, the options of greedy and beam search and of `<unk>`
replacement in one section."""

import dataclasses

from attn_research.config.fields import NON_NEGATIVE, Bool, Float, Int, OptionalFile, field


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
  """`decode`: greedy or beam search and what follows it; frozen, so a static jit argument."""

  beam_size: int = field(Int(low=0, note="0: greedy"), 0, "0 = greedy, k ≥ 1 = beam search")
  length_penalty: float = field(Float(low=0), 0.0, "GNMT α: lp = ((5 + |Y|) / 6)^α")
  coverage_penalty: float = field(Float(low=0), 0.0, "GNMT β: β Σ_j log min(Σ_i p_ij, 1)")
  max_length_a: float = field(
    Float(low=0), 0.0, "beam: force </s> at ⌊a · src_len + b⌋ when a or b > 0"
  )
  max_length_b: int = field(NON_NEGATIVE, 0, "beam: b of max_length_a")
  unk_replace: bool = field(
    Bool(), False, "<unk> → the most attended source token (Luong's +unk replace)"
  )
  unk_dictionary: str = field(
    OptionalFile(note="'': none"), "", "optional source<TAB>target file for unk_replace"
  )

r"""The base config: every key an experiment has, with its meaning and default.

Dataset configs (`dates.py`, `synthetic.py`, `debian_l10n.py`) start from it and set
the dataset, its padded shapes and the model and training sizes that suit it. Keys no
dataset config sets keep these defaults: Luong et al. 2015's global `general` attention
with input feeding over a bidirectional LSTM encoder, Adam with a cosine schedule.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = ""  # set by each dataset config; see `python -m experiments.variants`
  config.dataset.data_dir = ""  # TFDS data dir; "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.dataset.vocab = "word"  # char | word | moses | spm | spm_bpe
  config.dataset.vocab_size = 0  # the most frequent tokens (0: all) or spm pieces (0: 8000)
  # spm learns from a seeded random sample of this many training sentences (0: all of them).
  config.dataset.vocab_sentences = 1_000_000
  # Token ids and vocabularies of training splits, shared by trials and hosts; "" =
  # token_cache in the TFDS data dir.
  config.dataset.cache_dir = ""
  # Source and target language codes `xx-yy` (tokenizer rules, sacreBLEU); "" = from the
  # name (`debian_l10n/en-de`) or none.
  config.dataset.languages = ""
  # dataset.name=text: each split's `SRC,TGT[,ALIGN]` files or one TSV (see experiments/
  # configs/text.py); other datasets leave them empty.
  config.dataset.files = ml_collections.ConfigDict({"train": "", "validation": "", "test": ""})

  config.data = ml_collections.ConfigDict()
  # Padded lengths: every batch has one of len(source) × len(target) shapes.
  config.data.source_buckets = (16, 32, 64)
  config.data.target_buckets = (17, 33, 65)  # counting </s>
  # Training drops pairs with more words than this on either side (0 = no limit);
  # evaluation keeps every pair.
  config.data.max_train_words = 0

  config.model = ml_collections.ConfigDict()
  config.model.embedding_size = 64
  config.model.dropout = 0.0
  config.model.encoder = ml_collections.ConfigDict()
  config.model.encoder.type = "bi"  # uni | bi | gnmt
  config.model.encoder.cell = "lstm"  # lstm | gru; the decoder uses the same cell
  config.model.encoder.num_layers = 1
  # The decoder's state size too (it attends over these states); a bi encoder runs 2 × 128.
  config.model.encoder.hidden_size = 256
  config.model.encoder.residual = False  # residual connections from the second layer
  config.model.encoder.reverse_source = False  # read sources backwards (Luong's +reverse)
  config.model.bridge = "last"  # zero | last (Luong) | dense (Bahdanau: tanh(W ←h_1))
  # No cell or hidden_size keys: the decoder runs model.encoder.cell cells of
  # model.encoder.hidden_size units.
  config.model.decoder = ml_collections.ConfigDict()
  config.model.decoder.type = "luong"  # luong | bahdanau | gnmt | none_state | none_input
  config.model.decoder.num_layers = 1
  config.model.decoder.input_feeding = True  # luong only
  config.model.decoder.tfnmt_compat = False  # luong: tensorflow/nmt's W[h; c], no tanh
  config.model.decoder.deep_output = True  # bahdanau: maxout deep output (appendix A.2.2)
  config.model.decoder.maxout_size = 0  # bahdanau: maxout units; 0 = hidden_size // 2
  config.model.decoder.tie_embeddings = False  # output layer = target embedding matrix
  config.model.attention = ml_collections.ConfigDict()
  config.model.attention.score = "general"  # see `python -m experiments.variants`
  config.model.attention.alignment = "global"  # global | local_m | local_p
  config.model.attention.window = 10  # D of local alignments (Luong: 10)
  config.model.attention.size = 0  # N of concat/additive/mul scores and local-p; 0 = hidden
  config.model.attention.init = "paper"  # paper (each score as published) | default
  config.model.attention.max_source_length = 0  # location score reach; 0 = largest bucket
  config.model.attention.sigma = 0.0  # local_p: Gaussian σ (Eq. 10); 0 = window / 2 (Luong)
  config.model.attention.normalizer = "softmax"  # softmax | sparsemax | entmax15 | entmax
  config.model.attention.entmax_alpha = 1.5  # α of normalizer=entmax (bisection), > 1
  config.model.attention.heads = 1  # multi-head: H chunks of the compared vectors and values
  # none | see (See 2017) | tu_linguistic | tu_nn (Tu 2016): needs concat/additive/normed_additive
  config.model.attention.coverage = "none"
  config.model.attention.coverage_size = 10  # units of the tu_nn coverage (Tu's 10)
  # alignment=monotonic | mocha (Raffel 2017, Chiu & Raffel 2018): energy = score + r
  config.model.attention.chunk = 2  # MoChA's chunk w
  config.model.attention.energy_bias = -1.0  # r's initial value (Lingvo's; Raffel suggests -4)
  config.model.attention.sigmoid_noise = 1.0  # σ of the pre-sigmoid noise while training
  config.model.attention.expectation = "parallel"  # parallel (the paper's) | recursive (exact)

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 1000
  config.train.batch_size = 128
  # Batches whose gradients add up to one optimizer step (OpenNMT-py's accum_count): an
  # effective batch of accumulate_steps × batch_size pairs, one batch's memory.
  config.train.accumulate_steps = 1
  # > 0: a token budget per batch instead of batch_size rows (OpenNMT-py's batch_type
  # tokens): each bucket shape (S, T) takes the most rows whose padded max(S, T) tokens
  # fit, a multiple of the devices; short sentences come in larger batches.
  config.train.batch_tokens = 0
  config.train.optimizer = "adam"  # adam | sgd
  config.train.learning_rate = 3e-3
  config.train.schedule = "cosine"  # constant | cosine
  config.train.warmup_steps = 100
  config.train.grad_clip = 5.0  # global-norm clipping (Luong: rescale when the norm > 5); 0 = off
  config.train.label_smoothing = 0.0
  # λ of See 2017's coverage loss Σ_t Σ_j min(a_tj, Σ_{t'<t} a_t'j), per target token.
  config.train.coverage_loss = 0.0
  # The step from which it counts: See et al. added it for a short last phase only.
  config.train.coverage_loss_start = 0
  # λ of a loss pulling the attention towards gold alignments (the training split's
  # alignment: synthetic's, or dataset.files.train=SRC,TGT,ALIGN); ce | mse, per target token.
  config.train.guided_alignment = 0.0
  config.train.guided_alignment_loss = "ce"
  config.train.dtype = "float32"  # float32 | bfloat16: computation (parameters stay float32)
  config.train.log_every = 100
  config.train.eval_every = 250
  config.train.checkpoint_every = 250
  config.train.keep_checkpoints = 2

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 512
  config.eval.splits = ("validation", "test")  # evaluated at the end, into result.json
  config.eval.length_bin = 10  # source tokens per bin of BLEU by length
  config.eval.num_heatmaps = 4  # attention heatmaps of the first examples of each split

  config.decode = ml_collections.ConfigDict()
  config.decode.beam_size = 0  # 0 = greedy, k ≥ 1 = beam search
  config.decode.length_penalty = 0.0  # GNMT α: lp = ((5 + |Y|) / 6)^α
  config.decode.coverage_penalty = 0.0  # GNMT β: β Σ_j log min(Σ_i p_ij, 1)
  config.decode.max_length_a = 0.0  # beam: force </s> at ⌊a · src_len + b⌋ when a or b > 0
  config.decode.max_length_b = 0
  config.decode.unk_replace = False  # <unk> → most attended source token (Luong's +unk replace)
  config.decode.unk_dictionary = ""  # optional source<TAB>target file for unk_replace
  return config

"""What a training run is made of, as dataclasses (loaded from YAML by peerseq.config).

A method is a configuration of these: its peers (dict keyed by role), the links between them,
the update rule. Nothing here names a paper; recipes/ do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class FieldConfig:
    """A token field of the batch: which text column, which tokenizer (saved with the data)."""

    column: str
    tokenizer: str
    eos: bool = False  # append EOS: decoder targets
    sample: bool = False  # subword regularisation while training (sentencepiece)


@dataclass
class DataConfig:
    corpus: str  # a prepared directory (peerseq prepare ... --out DIR)
    fields: dict[str, FieldConfig] = field(default_factory=dict)
    prepare: dict[str, Any] = field(default_factory=dict)  # PrepareArgs to make corpus if absent
    train_split: str = "train"
    dev_split: str = "dev"
    test_split: str = "test"
    features: Literal["fbank80", "spec201"] = "fbank80"
    precompute: bool = True  # store lilcom features once, else compute on the fly
    cmvn: bool = True
    max_frames: int = 20000  # speech batches: frames per batch, padding included
    max_tokens: int = 4000  # text batches: tokens per batch, padding included
    filter_max_frames: int | None = 3000
    min_seconds: float | None = None
    max_seconds: float | None = None
    limit_train: int | None = None  # first N training utterances
    limit_dev: int | None = None
    limit_test: int | None = None  # first N test utterances (tests and quick looks only)
    num_buckets: int = 10


@dataclass
class ModelConfig:
    preset: str  # peerseq.models.presets name, paper003 names (teacher_a, ...), em_network
    size: str = "small"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # "RUN_DIR:peer": all weights from that run's checkpoint
    init_encoder_from: str | None = None  # "RUN_DIR:peer": encoder (+ front-end) only
    init_decoder_from: str | None = None  # "RUN_DIR:peer": decoder (+ output layer) only
    mask_prob: float = 0.0  # em_network, encoder-decoder form: lambda of M(y, lambda)
    # submodules taken from an earlier peer's model (the same objects, updated once per step),
    # e.g. {decoder: st, output_layer: st}: multi-task ST+MT with one shared decoder
    share: dict[str, str] = field(default_factory=dict)
    # the whole model of an earlier peer (the same object): two forward passes of one model,
    # each with its own dropout masks -- R-Drop (Liang et al. 2021) is such a pair plus a link
    same_as: str | None = None


@dataclass
class OptimConfig:
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    momentum: float = 0.9  # sgd
    schedule: Literal["inverse_sqrt", "epoch_decay", "constant"] = "inverse_sqrt"
    warmup: int = 500  # steps of linear warm-up (inverse_sqrt)
    decay: float = 0.95  # per epoch (epoch_decay; paper 003)


@dataclass
class DecodeConfig:
    metric: Literal["bleu", "chrf", "wer", "cer", "none"] = "bleu"
    beam: int = 5
    len_penalty: float = 1.0
    max_len_a: float = 1.2
    max_len_b: int = 10


@dataclass
class PeerConfig:
    model: ModelConfig
    reads: str = "speech"  # "speech", a token field, or "@peer" (that peer's output)
    reads_also: str | None = None  # with "@peer": a token field as second input (EM: target)
    predicts: str = "target"  # the token field it learns
    loss: Literal["nll", "ctc", "none"] = "nll"
    loss_weight: float = 1.0
    label_smoothing: float = 0.1
    trainable: bool = True
    optim: OptimConfig | None = None  # default: the experiment's optim
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    # sequence-level KD (Kim & Rush 2016) for an encoder-decoder: in training, its target is
    # this frozen peer's beam-search 1-best of the input, decoded once and cached; dev and test
    # keep the reference
    train_on_hyps_of: str | None = None


@dataclass
class LinkConfig:
    a: str
    b: str
    kind: Literal["kl", "kl_symmetric", "l2", "seqkd"] = "kl_symmetric"
    weight: float = 1.0
    schedule: Literal["constant", "warmup", "cyclical"] = "constant"
    warmup: int = 1000  # schedule warmup
    R: float = 0.5  # schedule cyclical (paper 000 Eq. 11-12)
    C: int = 5000
    temperature: float = 1.0
    grad: str = "both"
    name: str = ""
    cache: bool = True  # seqkd from a frozen teacher: decode the training set once, on disk
    k: int = 1  # seqkd: hypotheses per utterance (CTC prefix beam search)


@dataclass
class TrainConfig:
    update: Literal["joint", "alternating"] = "joint"
    max_epochs: int = 10
    max_steps: int | None = None
    accum_steps: int = 1
    clip_norm: float | None = 5.0
    log_every: int = 10
    valid_every: int | None = None  # steps; validation also runs at every epoch end
    keep_last: int = 3
    early_stop_peer: str | None = None
    patience: int | None = None  # validations without improvement before stopping
    seed: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = False
    num_threads: int | None = None
    # where frozen teachers' decoded training sets are cached (default RUN/pseudo_labels); runs
    # may share one folder: each file is named by the teacher's weights hash and decode settings
    pseudo_labels_dir: str | None = None


@dataclass
class Experiment:
    out_dir: str
    data: DataConfig
    peers: dict[str, PeerConfig]
    links: list[LinkConfig] = field(default_factory=list)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

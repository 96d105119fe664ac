"""What a training run is made of, as dataclasses (loaded from YAML by peerseq.config).

A method is a configuration of these: its peers (dict keyed by role), the links between them,
the update rule. Nothing here names a paper; recipes/ do.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from peerseq.data.config import DataConfig
from peerseq.engine.optim import OptimConfig
from peerseq.typed import bounded


@dataclass
class ModelConfig:
    preset: str  # a name in peerseq.models.presets (the one table of models)
    size: str = "small"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None  # "RUN_DIR:peer": all weights from that run's checkpoint
    init_encoder_from: str | None = None  # "RUN_DIR:peer": encoder (+ front-end) only
    init_decoder_from: str | None = None  # "RUN_DIR:peer": decoder (+ output layer) only
    mask_prob: float = bounded(
        0.0, ge=0, le=1
    )  # em_network, encoder-decoder form: lambda of M(y, lambda)
    # submodules taken from an earlier peer's model (the same objects, updated once per step),
    # e.g. {decoder: st, output_layer: st}: multi-task ST+MT with one shared decoder
    share: dict[str, str] = field(default_factory=dict)
    # the whole model of an earlier peer (the same object): two forward passes of one model,
    # each with its own dropout masks -- R-Drop (Liang et al. 2021) is such a pair plus a link
    same_as: str | None = None


@dataclass
class DecodeConfig:
    metric: Literal["bleu", "chrf", "wer", "cer", "none"] = "bleu"
    beam: int = bounded(5, ge=1)
    len_penalty: float = bounded(1.0, ge=0)
    max_len_a: float = bounded(1.2, ge=0)
    max_len_b: int = bounded(10, ge=0)


@dataclass
class PeerConfig:
    model: ModelConfig
    reads: str = "speech"  # "speech", a token field, or "@peer" (that peer's output)
    reads_also: str | None = None  # with "@peer": a token field as second input (EM: target)
    predicts: str = "target"  # the token field it learns
    loss: Literal["nll", "ctc", "none"] = "nll"
    loss_weight: float = bounded(1.0, ge=0)
    label_smoothing: float = bounded(0.1, ge=0, lt=1)
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
    weight: float = bounded(1.0, ge=0)
    schedule: Literal["constant", "warmup", "cyclical"] = "constant"
    warmup: int = bounded(1000, ge=0)  # schedule warmup
    R: float = bounded(0.5, gt=0, le=1)  # schedule cyclical (paper 000 Eq. 11-12)
    C: int = bounded(5000, ge=1)
    # steps with the link off (weight 0) before its schedule starts from its own step 1, e.g.
    # until the ST peer is within reach of the MT peer it would otherwise pull down
    start: int = bounded(0, ge=0)
    temperature: float = bounded(1.0, gt=0)
    grad: str = "both"
    name: str = ""
    cache: bool = True  # seqkd from a frozen teacher: decode the training set once, on disk
    k: int = bounded(1, ge=1)  # seqkd: hypotheses per utterance (CTC prefix beam search)


@dataclass
class TrainConfig:
    update: Literal["joint", "alternating"] = "joint"
    max_epochs: int = bounded(10, ge=1)
    max_steps: int | None = bounded(None, ge=1)
    accum_steps: int = bounded(1, ge=1)
    clip_norm: float | None = bounded(5.0, gt=0)
    log_every: int = bounded(10, ge=1)
    valid_every: int | None = bounded(None, ge=1)  # steps; validation also at every epoch end
    keep_last: int = bounded(3, ge=1)
    # minutes of training after which an interim checkpoint is written between validations (a
    # crash or a stopped session then loses at most that much); checked every log_every steps
    save_every_minutes: float | None = bounded(None, gt=0)
    early_stop_peer: str | None = None
    patience: int | None = bounded(None, ge=1)  # validations without improvement before stop
    seed: int = bounded(1, ge=0)
    device: str = bounded("auto", pattern=r"auto|cpu|cuda(:[0-9]+)?|mps")
    bf16: bool = False
    num_threads: int | None = bounded(None, ge=1)
    # steps in a row whose loss or gradient norm is not finite (each skipped, no update) after
    # which the run stops with an error naming the last good checkpoint
    max_bad_steps: int = bounded(5, ge=1)
    # seconds a collective waits for a rank that stopped answering (torchrun); gloo's own
    # default is 30 minutes. Validation runs on rank 0 while the others wait: raise it if a
    # validation takes longer
    collective_timeout: float = bounded(600.0, gt=0)
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

    def __post_init__(self) -> None:
        # a cosine LR that ends before or after the budget trains its last updates at LR 0, or
        # stops short of annealing: allowed (a user may mean it), but said
        steps = self.train.max_steps
        optims = {"optim": self.optim} | {
            f"peers.{name}.optim": p.optim for name, p in self.peers.items() if p.optim
        }
        for where, cfg in optims.items():
            if cfg.schedule == "cosine" and steps is not None and cfg.total != steps:
                warnings.warn(
                    f"{where}.total ({cfg.total}) is not train.max_steps ({steps}): the LR "
                    f"reaches zero at update {cfg.total}",
                    stacklevel=2,
                )

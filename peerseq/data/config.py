"""The data settings of an experiment: which prepared corpus, which token fields, how batches
are made, and how to prepare the corpus when it is missing (`data.prepare`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from peerseq.errors import PeerseqError
from peerseq.typed import bounded, from_dict


@dataclass
class FieldConfig:
    """A token field of the batch: which text column, which tokenizer (saved with the data)."""

    column: str
    tokenizer: str
    eos: bool = False  # append EOS: decoder targets
    sample: bool = False  # subword regularisation while training (sentencepiece)


@dataclass
class SpecAugmentConfig:
    """lhotse's SpecAugment on the training batch's features (after CMVN). Defaults are lhotse's
    and icefall's for 80 mel bins: Park et al. 2019's LibriSpeech policy, time masks bounded by
    a fraction of each utterance."""

    time_warp: int | None = bounded(80, ge=0)  # warp factor; 0 or None: no warping
    freq_masks: int = bounded(2, ge=0)
    freq_width: int = bounded(27, ge=1)  # widest frequency mask, in bins (F)
    time_masks: int = bounded(10, ge=0)
    time_width: int = bounded(100, ge=1)  # widest time mask, in frames (T)
    max_time_fraction: float = bounded(0.15, ge=0, le=1)  # of an utterance's frames, all masks
    p: float = bounded(0.9, ge=0, le=1)  # share of utterances augmented


@dataclass
class NoiseConfig:
    """Additive noise (lhotse's CutMix) from recordings the user gives."""

    source: str  # a lhotse CutSet or RecordingSet manifest, or a folder of audio files
    snr: list[float] = field(default_factory=lambda: [10.0, 20.0])  # dB: [low, high] or [fixed]
    p: float = bounded(0.5, ge=0, le=1)  # share of utterances that get noise


@dataclass
class AugmentConfig:
    """Training-time augmentation, drawn per batch from the batch's own generator (the same for
    a seed, with any number of workers, and after a resume). Validation, decoding and export
    never augment. Speed, volume and noise change the audio, so a run that uses them computes
    its training features on the fly; SpecAugment works on stored features too."""

    speed: list[float] = bounded(default_factory=list, gt=0)  # e.g. [0.9, 1.0, 1.1]: one each
    volume: list[float] = bounded(default_factory=list, gt=0)  # [low, high] gain, uniform
    volume_p: float = bounded(0.5, ge=0, le=1)
    noise: NoiseConfig | None = None
    specaugment: SpecAugmentConfig | None = None

    def __post_init__(self) -> None:
        if self.volume and len(self.volume) != 2:
            raise ValueError(f"volume: expected [low, high], got {self.volume}")
        if self.noise and len(self.noise.snr) not in (1, 2):
            raise ValueError(f"noise.snr: expected [low, high] or [value], got {self.noise.snr}")

    def changes_audio(self) -> bool:
        return bool(self.speed or self.volume or self.noise)

    def any(self) -> bool:
        return self.changes_audio() or self.specaugment is not None


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
    max_frames: int = bounded(20000, ge=1)  # speech batches: frames per batch, padding included
    max_tokens: int = bounded(4000, ge=1)  # text batches: tokens per batch, padding included
    filter_max_frames: int | None = bounded(3000, ge=1)
    min_seconds: float | None = bounded(None, ge=0)
    max_seconds: float | None = bounded(None, gt=0)
    limit_train: int | None = bounded(None, ge=1)  # first N training utterances
    limit_dev: int | None = bounded(None, ge=1)
    limit_test: int | None = bounded(None, ge=1)  # first N test utterances (tests, quick looks)
    num_buckets: int = bounded(10, ge=1)
    # training drops the batches a length bucket leaves unfilled when it runs out, all at an
    # epoch's end (icefall's default). Kept, they are ~3% of an epoch's updates: on all 29,000
    # multi30k-speech utterances in 30 buckets, 30 of 881 batches, 14 of them under half the
    # frame budget, some of 1-5 utterances; Adam takes each as a full step.
    # Off by default: what the earlier recipes' results were trained with.
    drop_last: bool = False
    # batch a speech corpus by its frames even when no peer reads the audio: a text-only run
    # (MT trained on in the ST runs' place) then sees the very batches the speech runs it is
    # compared with see, not its own token batches
    batch_by_frames: bool = False
    # training batches collated ahead in this many worker processes; 0: in the training
    # process, between steps. None: 1 on a GPU, 0 on a CPU, where the step has every core:
    # there a worker slowed an epoch by 10-17%, collating in between by 0-2%
    # (bench/input_pipeline.py)
    workers: int | None = bounded(None, ge=0)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training batches only
    # train from the corpus's lhotse Shar shards (prepare --shar), streamed, each process of a
    # torchrun job reading its own shards; dev and test are read from the manifests as always
    shar: bool = False

    def __post_init__(self) -> None:
        limits = {}
        for split, limit in (
            (self.train_split, self.limit_train),
            (self.dev_split, self.limit_dev),
            (self.test_split, self.limit_test),
        ):
            if limits.setdefault(split, limit) != limit:  # Data.limit(split) must be one number
                raise ValueError(
                    f"split '{split}' serves two roles with different limits "
                    f"({limits[split]} and {limit}): give them the same limit_*"
                )
        if self.prepare:  # checked now, not when the corpus is first needed
            from peerseq.data.prepare import PrepareArgs  # prepare.py imports this module

            try:
                from_dict(PrepareArgs, {"out": self.corpus, **self.prepare})
            except PeerseqError as e:
                raise ValueError(f"prepare.{e}") from None
        if self.min_seconds is not None and self.max_seconds is not None:
            if self.min_seconds >= self.max_seconds:
                raise ValueError(
                    f"min_seconds {self.min_seconds} must be below max_seconds {self.max_seconds}"
                )

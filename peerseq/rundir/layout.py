"""Every path of a run directory, named in one place.

RUN/config.yaml                  the experiment as it ran (`peerseq train` writes it)
RUN/metrics.jsonl                one record per logged step, validation and epoch end
RUN/.lock                        the writer's lock (rundir.lock)
RUN/checkpoints/step-NNNNNNNN/   model.PEER.safetensors, optim.PEER.pt, rng.pt, state.json,
                                 complete.json (rundir.checkpoint)
RUN/checkpoints/latest           name of the newest checkpoint (for people and scripts)
RUN/best/                        model.PEER.safetensors + best.json: early stopping's best
RUN/averaged/                    model.PEER.safetensors + from.json: `peerseq average`
RUN/eval/SPLIT.json              `peerseq evaluate` scores; eval/PEER.SPLIT.hyp(.jsonl) beside
RUN/decode/PEER.SPLIT.hyp        `peerseq decode`'s hypotheses (and .jsonl), unless --out
RUN/tensorboard/                 TensorBoard events
RUN/analyses/                    what a recipe's report computed from the weights (JSON)
RUN/pseudo_labels/               frozen teachers' cached hypotheses (unless configured apart)
RUN/ddp_ranks.json               every rank's parameter checksums after a DDP run
RUN/export.json                  what `peerseq export` took, in an export directory
RUN/export/                      a recipe's export of the run's peer (`peerseq reproduce`)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WEIGHTS = ("best", "last", "averaged")


def weights_file(folder: str | os.PathLike, peer: str) -> Path:
    """A peer's weights in a checkpoint, best/ or averaged/ folder."""
    return Path(folder) / f"model.{peer}.safetensors"


def peers_in(folder: str | os.PathLike) -> list[str]:
    """The peers whose weights a folder holds, sorted."""
    files = Path(folder).glob("model.*.safetensors")
    return sorted(p.name[len("model.") : -len(".safetensors")] for p in files)


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def averaged(self) -> Path:
        return self.root / "averaged"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def decode(self) -> Path:
        return self.root / "decode"

    @property
    def train_log(self) -> Path:
        """The console's text: start-up summary, loss lines, dev lines, why the run ended."""
        return self.root / "train.log"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def analyses(self) -> Path:
        return self.root / "analyses"

    @property
    def best_record(self) -> Path:
        """best/best.json: the step, peer, metric and value of the best validation."""
        return self.best / "best.json"

    @property
    def pseudo_labels(self) -> Path:
        return self.root / "pseudo_labels"

    @property
    def ddp_ranks(self) -> Path:
        return self.root / "ddp_ranks.json"

    @property
    def export_record(self) -> Path:
        return self.root / "export.json"

    @property
    def latest_pointer(self) -> Path:
        """checkpoints/latest: the newest checkpoint's name; its mtime is the last save."""
        return self.checkpoints / "latest"

    @property
    def export(self) -> Path:
        """RUN/export/: where `peerseq reproduce` exports the run's peer (an export directory)."""
        return self.root / "export"

    def last_weights_written(self) -> Path | None:
        """best/ if the run has it, else checkpoints/latest, else None: the mtime of what is
        returned is when the run last wrote the weights it is decoded with."""
        for path in (self.best, self.latest_pointer):
            if path.exists():
                return path
        return None

    def outputs(self, peer: str, split: str) -> Path:
        """eval/PEER.SPLIT.jsonl: {"id", "hyp", "ref"} per decoded utterance."""
        return self.hypotheses(peer, split).with_suffix(".jsonl")

    def scores(self, split: str) -> Path:
        return self.eval / f"{split}.json"

    def hypotheses(self, peer: str, split: str) -> Path:
        """One hypothesis per line; the same stem with .jsonl holds {"id", "hyp", "ref"}."""
        return self.eval / f"{peer}.{split}.hyp"

    def is_run(self) -> bool:
        return self.config.is_file()

"""A run's log: the objective's terms to the console (rich), RUN/metrics.jsonl and TensorBoard,
and metrics.jsonl read back.

Every record is a flat dict: `split`, `step`, `epoch`, `time`, then floats (the objective's
terms, dev metrics), except a `start` record's description of where the run trains.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from peerseq.files import atomic_write_text
from peerseq.rundir.layout import RunDir


class RunLogger:
    """keep: the metrics.jsonl lines a resumed run keeps -- the number its checkpoint recorded
    (`lines` at save time); lines written after that checkpoint are dropped, so a resumed run's
    records are those of an uninterrupted one. keep=None (a checkpoint from before this count
    existed): records up to `resumed_step`. TensorBoard events after `resumed_step` are purged.
    """

    def __init__(
        self,
        run_dir: Path,
        enabled: bool = True,
        total_steps: int | None = None,
        keep: int | None = 0,
        resumed_step: int = 0,
        resumed_epoch: int = 0,
    ):
        self.enabled = enabled
        self.total = total_steps
        self.console = Console(width=max(Console().width, 130))
        self.start = time.time()
        self.start_step = resumed_step  # the ETA's rate counts this process's updates only
        self.valid_total = 0.0  # seconds spent validating since start
        self.bar: Progress | None = None  # the live progress bar, on a terminal
        self.utts = 0
        self.lines = 0
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            path = RunDir(run_dir).metrics
            self.lines = _truncate(path, keep, resumed_step, resumed_epoch)
            self.jsonl = open(path, "a", encoding="utf-8")  # noqa: SIM115
            self.tb = SummaryWriter(str(RunDir(run_dir).tensorboard), purge_step=resumed_step + 1)
            # what the console shows, also kept: RUN/train.log (appended across resumes)
            self.file = open(RunDir(run_dir).train_log, "a", encoding="utf-8")  # noqa: SIM115
            self.file_console = Console(file=self.file, width=130, no_color=True, highlight=False)

    def record(self, split: str, step: int, values: dict[str, float], epoch: int) -> None:
        if not self.enabled:
            return
        self.jsonl.write(
            json.dumps(
                {"split": split, "step": step, "epoch": epoch, "time": round(time.time(), 1)}
                | values
            )
            + "\n"
        )
        self.jsonl.flush()
        self.lines += 1
        for k, v in values.items():
            if isinstance(v, int | float):
                self.tb.add_scalar(f"{split}/{k}", v, step)

    def validated(self, seconds: float) -> dict[str, float]:
        """Count a validation of `seconds` -> what its dev record says of the time: this
        validation's seconds, and the share of this process's training time (since it started
        or resumed) spent validating."""
        self.valid_total += seconds
        elapsed = max(time.time() - self.start, seconds, 1e-9)
        return {
            "valid_seconds": round(seconds, 2),
            "valid_share": round(self.valid_total / elapsed, 4),
        }

    def progress(self, step: int, epoch: int, terms: dict[str, float], utts: int) -> None:
        """One console line: step, epoch, loss terms, weights, throughput, ETA."""
        self.utts += utts
        if not self.enabled:
            return
        elapsed = time.time() - self.start
        rate = self.utts / max(elapsed, 1e-9)
        shown = " ".join(f"{k} {v:.3f}" for k, v in terms.items())
        eta = ""
        if self.total:
            left = elapsed / max(step - self.start_step, 1) * (self.total - step)
            eta = f" | ETA {int(left // 60)}:{int(left % 60):02d}"
        total = f"/{self.total}" if self.total else ""
        line = f"step {step}{total} ep {epoch} | {shown} | {rate:.1f} utt/s{eta}"
        if not self.console.is_terminal:  # a log file or CI: one line a record
            self._print(line)
            return
        # a terminal: one live bar (steps, ETA, the loss terms) above which the rest scrolls
        if self.bar is None:
            self.bar = Progress(
                TextColumn("step {task.completed}/{task.total} ep {task.fields[epoch]}"),
                BarColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[terms]} | {task.fields[rate]}"),
                console=self.console,
            )
            self.task = self.bar.add_task("train", total=self.total, epoch=epoch, terms="", rate="")
            self.bar.start()
        self.bar.update(
            self.task, completed=step, epoch=epoch, terms=shown, rate=f"{rate:.1f} utt/s"
        )
        self.file_console.print(line)
        self.file.flush()

    def say(self, text: str) -> None:
        if self.enabled and text:
            self._print(text)

    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False)
        self.file_console.print(text)
        self.file.flush()

    def close(self, last: str | None = None) -> None:
        """Say `last` (if any), then close the files."""
        self.say(last or "")
        if self.bar is not None:
            self.bar.stop()
        if self.enabled:
            self.jsonl.close()
            self.tb.close()
            self.file.close()


def _truncate(path: Path, keep: int | None, resumed_step: int, resumed_epoch: int) -> int:
    """Keep the first `keep` lines of metrics.jsonl (keep=None: the records up to the resumed
    step and epoch; an epoch's end logged at the checkpoint's step comes after the checkpoint),
    rewritten atomically when anything goes; -> the number of lines kept."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if keep is None:
        kept = []
        for line in lines:
            try:
                rec = json.loads(line)
                step, epoch = rec.get("step", 0), rec.get("epoch", 0)
                if step > resumed_step or (step == resumed_step and epoch > resumed_epoch):
                    break
            except (json.JSONDecodeError, AttributeError):
                break
            kept.append(line)
    else:
        kept = lines[:keep]
    kept = [x if x.endswith("\n") else x + "\n" for x in kept]
    if len(kept) != len(lines) or "".join(kept) != "".join(lines):
        atomic_write_text(path, "".join(kept))
    return len(kept)


def read_metrics(path: str | Path) -> list[dict]:
    """A run's metrics.jsonl as records; a line still being written (a run in progress) is left
    out."""
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out

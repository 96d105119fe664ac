"""A link: a divergence between two peers' outputs on the same positions, weighted by a schedule.

    kind "kl"            KL(p_a || p_b)
    kind "kl_symmetric"  KL(p_a || p_b) + KL(p_b || p_a), logged as two terms (paper 000 Eq. 8)
    kind "l2"            squared L2 between the posteriors (paper 002 Eq. 4)
    kind "seqkd"         CTC loss of b (a CTC student) on a's decoded hypotheses (seqKD):
                         the hypotheses are batch.tokens[f"hyp:{a}"] when cached (frozen
                         teachers, decoded once; k-best lists, averaged over k, when
                         batch.kbest has them), else CTC greedy on a's output, online
grad: which side receives gradient: "both", or a peer's name (the other side is detached).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from peerseq.data.batching import Batch, pad_tokens
from peerseq.engine.schedules import Constant, Schedule
from peerseq.errors import PeerseqError
from peerseq.losses import ctc_loss, kl_divergence, seqkd_ctc, squared_l2_posteriors
from peerseq.models.output import SeqOutput
from peerseq.search.ctc import ctc_greedy

KINDS = ("kl", "kl_symmetric", "l2", "seqkd")


@dataclass
class Link:
    a: str
    b: str
    kind: str = "kl_symmetric"
    weight: Schedule = field(default_factory=Constant)
    temperature: float = 1.0
    grad: str = "both"
    name: str = ""  # how its weight is logged (e.g. "beta"); default "w:<first term>"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise PeerseqError(f"link {self.a}-{self.b}: kind {self.kind!r} not in {KINDS}")
        if self.grad not in ("both", self.a, self.b):
            raise PeerseqError(
                f"link {self.a}-{self.b}: grad must be 'both', '{self.a}' or '{self.b}'"
            )

    def receives_grad(self, peer: str) -> bool:
        return peer in (self.a, self.b) and self.grad in ("both", peer)

    def terms(self, outputs: dict[str, SeqOutput], batch: Batch) -> dict[str, torch.Tensor]:
        """Unweighted link terms, keyed by their log names, e.g. {"kl(mt||st)": tensor}."""
        if self.kind == "seqkd":  # the teacher's output is only needed without cached hyps
            term = self._seqkd(outputs.get(self.a), outputs[self.b], batch)
            return {f"seqkd({self.a}->{self.b})": term}
        pa, pb = outputs[self.a], outputs[self.b]
        if pa.log_probs.shape != pb.log_probs.shape:
            raise PeerseqError(
                f"link {self.a}-{self.b}: outputs are not on the same positions "
                f"({tuple(pa.log_probs.shape)} vs {tuple(pb.log_probs.shape)})"
            )
        la = pa.log_probs if self.grad in ("both", self.a) else pa.log_probs.detach()
        lb = pb.log_probs if self.grad in ("both", self.b) else pb.log_probs.detach()
        mask = pa.mask & pb.mask
        if self.kind == "l2":
            return {f"l2({self.a},{self.b})": squared_l2_posteriors(la, lb, mask)}
        out = {f"kl({self.a}||{self.b})": kl_divergence(la, lb, mask, self.temperature)}
        if self.kind == "kl_symmetric":
            out[f"kl({self.b}||{self.a})"] = kl_divergence(lb, la, mask, self.temperature)
        return out

    def _seqkd(self, teacher: SeqOutput | None, student: SeqOutput, batch: Batch) -> torch.Tensor:
        key = f"hyp:{self.a}"
        if key in batch.kbest:  # k > 1: the mean CTC over each utterance's k hypotheses
            return seqkd_ctc(student.log_probs, student.lengths, batch.kbest[key])
        if key in batch.tokens:
            hyps, lengths = batch.tokens[key], batch.lengths[key]
        else:  # online: the teacher's CTC greedy transcript of this batch
            seqs = ctc_greedy(teacher.log_probs.detach(), teacher.lengths)
            hyps, lengths = pad_tokens(seqs)
            hyps, lengths = hyps.to(student.log_probs.device), lengths.to(student.log_probs.device)
        # students are CTC models (build.check_method refuses encoder-decoder students)
        return ctc_loss(student.log_probs, student.lengths, hyps, lengths)

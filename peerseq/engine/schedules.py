"""Weights as pure functions of the training step (1-based: the first update is step 1).

    constant(value)          value at every step
    warmup(value, steps)     value * min(1, step / steps)
    cyclical(R, C, value)    paper 000 Eq. 11-12 (Fu et al., 2019): with r = (t - 1) mod C,
                             beta_t = value * r / (R C) while r <= R C, else value.
    any of them, start S     0 for the first S steps, then the schedule as if step S + 1 were
                             its step 1 (a link that starts once a peer is within reach)
A schedule is a frozen dataclass with __call__(step) -> float, so it can be logged, saved in a
config and compared; nothing in it changes as training runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerseq.errors import PeerseqError


@dataclass(frozen=True)
class Constant:
    value: float = 1.0

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class LinearWarmup:
    value: float = 1.0
    steps: int = 1000

    def __call__(self, step: int) -> float:
        return self.value * min(1.0, step / max(1, self.steps))


@dataclass(frozen=True)
class Cyclical:
    """Cyclical annealing: C-step cycles, rising linearly from 0 over the first R*C steps of each
    cycle, then flat at `value` for the remaining (1 - R) C steps."""

    R: float = 0.5
    C: int = 5000
    value: float = 1.0

    def __call__(self, step: int) -> float:
        r = (step - 1) % self.C
        rc = self.R * self.C
        return self.value * (r / rc if r <= rc else 1.0)


@dataclass(frozen=True)
class Delayed:
    """`inner` held at 0 for the first `start` steps, then run from its own step 1."""

    inner: Constant | LinearWarmup | Cyclical
    start: int = 0

    def __call__(self, step: int) -> float:
        return 0.0 if step <= self.start else self.inner(step - self.start)


Schedule = Constant | LinearWarmup | Cyclical | Delayed

SCHEDULES = {"constant": Constant, "warmup": LinearWarmup, "cyclical": Cyclical}


def make_schedule(spec: float | int | dict) -> Schedule:
    """A number -> Constant; {"type": "cyclical", "R": 0.5, "C": 5000} -> Cyclical; etc.; with
    "start": S > 0, that schedule Delayed by S steps."""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Constant(float(spec))
    if not isinstance(spec, dict) or spec.get("type") not in SCHEDULES:
        raise PeerseqError(
            f"schedule: expected a number or {{type: {'|'.join(SCHEDULES)}, ...}}, got {spec!r}"
        )
    kwargs = {k: v for k, v in spec.items() if k not in ("type", "start")}
    try:
        inner = SCHEDULES[spec["type"]](**kwargs)
    except TypeError as e:
        raise PeerseqError(f"schedule {spec['type']}: {e}") from None
    start = spec.get("start", 0)
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise PeerseqError(f"schedule start: expected a number of steps >= 0, got {start!r}")
    return Delayed(inner, start) if start else inner

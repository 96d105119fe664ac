"""What an encoder-decoder offers to be decoded incrementally (beam search, greedy, cascade):
the encoder's Memory and the IncrementalDecoding interface. Models implement it; search uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass
class Memory:
    """Encoder output that a decoder attends to.

    x:    [B, S, D] encoder states.
    mask: [B, S] bool, True on valid source positions.
    """

    x: torch.Tensor
    mask: torch.Tensor

    def index_select(self, index: torch.Tensor) -> Memory:
        """Rows picked/repeated by index [N] (e.g. each sentence repeated beam times)."""
        return Memory(self.x.index_select(0, index), self.mask.index_select(0, index))


class IncrementalDecoding(Protocol):
    """An encoder-decoder as seen by beam search.

    encode(src [B, S(, F)], src_lengths [B]) -> Memory
    decode_step(tokens [N, t], memory (N rows), cache) -> (log_probs [N, V], cache)
        tokens are all tokens so far, starting with BOS; only the last one is new, the cache
        (None on the first step) holds keys/values of the earlier ones.
    reorder_cache(cache, index [N]) -> cache with rows picked by index (beam reordering).
    """

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Memory: ...

    def decode_step(
        self, tokens: torch.Tensor, memory: Memory, cache: Any | None
    ) -> tuple[torch.Tensor, Any]: ...

    def reorder_cache(self, cache: Any, index: torch.Tensor) -> Any: ...

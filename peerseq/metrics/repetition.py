"""Token repetition ratio (EM-Network paper 002, Table 3, after Ghazvininejad et al. 2020 and
Song et al. 2021): how often an MT output repeats the token right before it.

Definition used: ratio = 100 * sum_s #{i >= 1 : y_s[i] == y_s[i-1]} / sum_s len(y_s), a
percentage over the corpus. The paper says "all consecutively repeating tokens divided by the
total number of tokens"; we read it as counting the repeats, so a run "a a a" adds 2 (the first
"a" is not a repetition). `count_first=True` counts every token of such a run instead ("a a a"
adds 3). The ratio depends on the tokenisation: pass token id lists to measure on the model's
subwords (as the paper, which decodes with teacher forcing and greedy search), or strings, which
are split on whitespace.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_repetition_ratio(
    hyps: Sequence[str] | Sequence[Sequence[int | str]], count_first: bool = False
) -> float:
    """Percentage of tokens equal to their predecessor in the same hypothesis (0 if no tokens)."""
    repeats = total = 0
    for hyp in hyps:
        toks = hyp.split() if isinstance(hyp, str) else list(hyp)
        total += len(toks)
        for i in range(1, len(toks)):
            if toks[i] == toks[i - 1]:
                repeats += 1
                # with count_first, the first token of a run counts too
                if count_first and (i == 1 or toks[i - 1] != toks[i - 2]):
                    repeats += 1
    return 100.0 * repeats / total if total else 0.0

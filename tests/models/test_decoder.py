import pytest
import torch

from peerseq.models.decoder import TransformerDecoder
from peerseq.models.incremental import Memory
from peerseq.models.output import lengths_to_mask

V, D = 17, 32


def make_memory(lengths, d=D):
    lengths = torch.as_tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()), d) * 2  # garbage on padded frames
    return Memory(x, lengths_to_mask(lengths))


def make_decoder():
    return TransformerDecoder(V, D, heads=4, ffn=64, layers=2)


def test_forward_shape():
    torch.manual_seed(0)
    dec = make_decoder()
    h = dec(torch.randint(1, V, (3, 6)), make_memory([7, 3, 5]))
    assert h.shape == (3, 6, D)


def test_incremental_equals_teacher_forcing():
    torch.manual_seed(0)
    dec = make_decoder().eval()
    memory = make_memory([7, 3, 5])
    tokens = torch.randint(1, V, (3, 6))
    full = dec(tokens, memory)
    cache = None
    for t in range(1, 7):
        h, cache = dec.step(tokens[:, :t], memory, cache)
        torch.testing.assert_close(h, full[:, t - 1], atol=1e-5, rtol=1e-5)
    assert cache[0].self_k.shape[2] == 6


def test_step_without_cache_runs_a_forced_prefix():
    torch.manual_seed(0)
    dec = make_decoder().eval()
    memory = make_memory([7, 3])
    tokens = torch.randint(1, V, (2, 5))
    full = dec(tokens, memory)
    h, cache = dec.step(tokens[:, :3], memory, None)  # prefix of 3 in one call
    torch.testing.assert_close(h, full[:, 2], atol=1e-5, rtol=1e-5)
    h, cache = dec.step(tokens, memory, cache)  # two new positions after a cached prefix
    torch.testing.assert_close(h, full[:, 4], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        dec.step(tokens, memory, cache)  # nothing new


def test_future_tokens_do_not_change_earlier_positions():
    torch.manual_seed(0)
    dec = make_decoder().eval()
    memory = make_memory([5, 5])
    tokens = torch.randint(1, V, (2, 6))
    other = tokens.clone()
    other[:, 4:] = torch.randint(1, V, (2, 2))
    torch.testing.assert_close(dec(tokens, memory)[:, :4], dec(other, memory)[:, :4])


def test_memory_padding_does_not_change_outputs():
    torch.manual_seed(0)
    dec = make_decoder().eval()
    memory = make_memory([7, 3, 5])
    tokens = torch.randint(1, V, (3, 4))
    full = dec(tokens, memory)
    for i, n in enumerate([7, 3, 5]):
        alone = Memory(memory.x[i : i + 1, :n], memory.mask[i : i + 1, :n])
        torch.testing.assert_close(dec(tokens[i : i + 1], alone)[0], full[i], atol=1e-5, rtol=1e-5)


def test_reorder_cache_matches_reordered_inputs():
    torch.manual_seed(0)
    dec = make_decoder().eval()
    memory = make_memory([7, 3, 5])
    tokens = torch.randint(1, V, (3, 4))
    _, cache = dec.step(tokens[:, :3], memory, None)
    index = torch.tensor([2, 2, 0, 1])  # repeat row 2, drop nothing, reorder
    cache = dec.reorder_cache(cache, index)
    h, _ = dec.step(tokens[index], memory.index_select(index), cache)
    expected = dec(tokens, memory)[index, 3]
    torch.testing.assert_close(h, expected, atol=1e-5, rtol=1e-5)

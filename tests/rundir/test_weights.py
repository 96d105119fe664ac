"""peerseq.rundir.weights: the same weights give the same file bytes and the same hash, whatever
order safetensors (a Rust HashMap) happened to write the metadata in."""

from __future__ import annotations

import hashlib
import json
import struct

import torch

from peerseq.rundir.weights import load_weights, save_weights, sorted_metadata, weights_sha256


def _tied_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    emb = torch.randn(6, 4)
    return {"embed.weight": emb, "output_layer.weight": emb, "bias": torch.randn(6)}


def _header(data: bytes) -> tuple[int, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return n, data[8 : 8 + n]


def test_save_weights_writes_its_metadata_in_sorted_order(tmp_path):
    f = tmp_path / "model.safetensors"
    save_weights(f, _tied_state())
    meta = json.loads(_header(f.read_bytes())[1])["__metadata__"]
    assert list(meta) == sorted(meta) and len(meta) == 2


def test_the_hash_is_of_the_weights_not_of_the_metadata_order(tmp_path):
    """The retrained MT model of issue 21: bit-identical tensors, its two metadata keys written
    the other way round, another file SHA-256. weights_sha256 gives both files one hash, that
    of the sorted file's bytes (the hash this table's runs recorded for their MT model)."""
    f, swapped = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_weights(f, _tied_state())
    data = f.read_bytes()
    n, header = _header(data)
    meta = json.loads(header)["__metadata__"]

    def segment(keys):
        d = {k: meta[k] for k in keys}
        return b'"__metadata__":' + json.dumps(d, separators=(",", ":")).encode()

    assert segment(sorted(meta)) in header
    other = header.replace(segment(sorted(meta)), segment(sorted(meta, reverse=True)))
    assert other != header and len(other) == n
    swapped.write_bytes(data[:8] + other + data[8 + n :])

    assert hashlib.sha256(swapped.read_bytes()).hexdigest() != hashlib.sha256(data).hexdigest()
    assert weights_sha256(swapped) == weights_sha256(f) == hashlib.sha256(data).hexdigest()
    assert sorted_metadata(other) == header
    loaded = load_weights(swapped)
    assert loaded["output_layer.weight"] is loaded["embed.weight"]
    assert torch.equal(loaded["bias"], _tied_state()["bias"])

    # one bit of one tensor changed: another hash
    changed = bytearray(data)
    changed[-1] ^= 1
    swapped.write_bytes(bytes(changed))
    assert weights_sha256(swapped) != weights_sha256(f)


def test_a_file_that_is_not_safetensors_is_hashed_as_it_is(tmp_path):
    f = tmp_path / "model.pt"
    f.write_bytes(b"\xff" * 20)
    assert weights_sha256(f) == hashlib.sha256(b"\xff" * 20).hexdigest()

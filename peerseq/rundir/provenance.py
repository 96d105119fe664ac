"""Which weights a run started from, for its `start` record in metrics.jsonl.

A peer is initialised from another run by name (`model.init_from: RUN_DIR:peer`, and
`init_encoder_from` / `init_decoder_from`). The name alone does not say which weights those were:
the run it names can be trained again under the same name (on another machine, after its folder
was lost), and fp32 training on another CPU gives other weights. So each start records, for every
such key, the name and the SHA-256 of the file it resolved to (`weights_sha256`: the file with
its metadata in sorted order, which is how `save_weights` writes it, so the same weights give the
same hash whichever process saved them); `peerseq report` then shows whether the runs it compares
started from the same weights (report/summary.py: started_from).
"""

from __future__ import annotations

from peerseq.rundir.checkpoint import peer_weights_file
from peerseq.rundir.weights import weights_sha256

INIT_KEYS = ("init_from", "init_encoder_from", "init_decoder_from")


def initial_weights(peers: dict) -> dict[str, dict[str, str]]:
    """{"PEER.KEY": {"from": "RUN_DIR:peer", "sha256": HEX}} for every init key a peer config
    sets (peers: name -> PeerConfig), in peer then key order; {} when no peer starts from
    another run. The file is the one the model was built from (peer_weights_file's choice)."""
    out = {}
    for name, cfg in peers.items():
        for key in INIT_KEYS:
            spec = getattr(cfg.model, key, None)
            if spec:
                file = peer_weights_file(spec, f"peers.{name}.model.{key}")
                out[f"{name}.{key}"] = {"from": spec, "sha256": weights_sha256(file)}
    return out

#!/usr/bin/env bash
# Issue 20, MT teacher pilot: the d 256 4+4 teacher at dropout 0.3 (fairseq's for its IWSLT'14
# Transformer) instead of 0.1, where at 0.1 it peaked at 40.1 dev BLEU after 11 epochs and then
# fell (README.md). Same data, lr 1e-3, warm-up 400, bf16, up to 40 epochs with patience 5;
# resumable. Log: exp/pilot20/mt_teacher_d03.log.
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p exp/pilot20
OMP_NUM_THREADS=1 .venv/bin/peerseq train recipes/em_network/teacher_mt.yaml \
    "peers.seq.model.overrides={d_model: 256, heads: 4, ffn: 1024, enc_layers: 4, dec_layers: 4, dropout: 0.3}" \
    train.max_epochs=40 train.patience=5 train.num_threads=1 train.log_every=50 \
    out_dir=exp/pilot20/mt_teacher_d03 --resume > exp/pilot20/mt_teacher_d03.log 2>&1

#!/bin/bash
# seqKD from Teacher B at a = 0.25 and 0.75 (and 0.5: the earlier seed-1 run), seed 1, dev only
cd "$(dirname "$0")/../../.."  # the repository
S=exp/mlkd/small/fsdd-connected/s1
for a in 0.25 0.75; do
  w=$(python3 -c "print(1-$a)")
  OMP_NUM_THREADS=1 .venv/bin/peerseq train recipes/mlkd/seqkd_b.yaml train.num_threads=1 \
    peers.a.loss_weight=$w peers.b.loss_weight=$w links.0.weight=$a links.1.weight=$a \
    train.pseudo_labels_dir=$S/pseudo_labels out_dir=exp/mlkd/pilot/seqkd_b_a$a --resume
done

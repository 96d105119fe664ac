#!/bin/bash
# MLKD from Teacher B at b = $B... (b = 1 as well) with a = $A, seed 1, dev only
# usage: sweep_b.sh A B1 B2 ...
cd "$(dirname "$0")/../../.."  # the repository
S=exp/mlkd/small/fsdd-connected/s1
a=$1; shift
w=$(python3 -c "print(1-$a)")
for b in "$@"; do
  ab=$(python3 -c "print($a*$b)")
  OMP_NUM_THREADS=1 .venv/bin/peerseq train recipes/mlkd/mlkd_b.yaml train.num_threads=1 \
    peers.a.loss_weight=$w peers.b.loss_weight=$w links.0.weight=$a links.1.weight=$a \
    links.2.weight=$ab links.3.weight=$ab \
    train.pseudo_labels_dir=$S/pseudo_labels out_dir=exp/mlkd/pilot/mlkd_b_a${a}_b$b --resume
done

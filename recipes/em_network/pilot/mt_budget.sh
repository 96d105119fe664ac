#!/usr/bin/env bash
# Issue 20, MT pilot: how many epochs the plain Transformer (d 128, 3+3) and the KD teacher
# (d 256, 4+4) need on all 29,000 Multi30k De->En pairs before their dev BLEU flattens. Two
# one-thread processes side by side; every run resumes where it stopped (--resume), so this
# script can be run again after an interruption. Logs: exp/pilot20/*.log, metrics in each run.
set -euo pipefail
cd "$(dirname "$0")/../../.."
C="data.limit_train=null data.limit_dev=300 optim.warmup=400 train.max_epochs=40 train.patience=5"
C="$C train.num_threads=1 train.log_every=50"
mkdir -p exp/pilot20
OMP_NUM_THREADS=1 .venv/bin/peerseq train recipes/em_network/mt.yaml $C \
    out_dir=exp/pilot20/mt_plain --resume > exp/pilot20/mt_plain.log 2>&1 &
sleep 30  # the second process finds the prepared corpus
OMP_NUM_THREADS=1 .venv/bin/peerseq train recipes/em_network/teacher_mt.yaml $C optim.lr=0.001 \
    out_dir=exp/pilot20/mt_teacher --resume > exp/pilot20/mt_teacher.log 2>&1 &
wait

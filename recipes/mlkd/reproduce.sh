#!/usr/bin/env bash
# Paper 003 (mutual-learning sequence-level KD for ASR): train the teachers and every student
# variant, decode the students greedily, and write results.md / results.json and Figure 3.
#
#   recipes/mlkd/reproduce.sh --scale small --corpus fsdd-connected --seeds "1 2"
#
# --scale tiny   the test suite's size (tiny models, 40 of 300 utterances prepared under OUT/data,
#                2 epochs); a minute or two
#         small  2,000 fsdd-connected utterances, the small sizes of peerseq/models/recurrent_ctc.py,
#                6 epochs (teachers 12; common.yaml); about 75 minutes per seed on a 2-core CPU
#         paper  the paper's configuration: paper-size models (Table 1), SGD lr 3e-4 x0.95 per
#                epoch, batches of ~32 utterances of 1-15 s, up to 100 epochs, for a GPU; on a
#                corpus given with --data (TIMIT or LibriSpeech lhotse manifests)
# --corpus fsdd-connected | multi30k-speech   (bundled corpora, prepared on first use)
# --data   a prepared corpus directory, or lhotse manifests train=A,dev=B,test=C (prepared once
#          into OUT/data-SCALE), replacing the bundled corpus
# --seeds  each seed repeats the whole pipeline, teachers included
# --methods  any of: teacher_a teacher_b students seqkd mlkd multi mlkd_multi same kd_b three
#            (default: all but three; `same` = the A+A and B+B pairs; `kd_b` = seqKD and MLKD
#            with Teacher B as the one teacher; a method's teachers are trained too)
# --k K    hypotheses per utterance from each teacher (CTC prefix beam search; default 1)
# --out    root of the runs (default exp/mlkd): OUT/SCALE/CORPUS/sSEED/METHOD
# --results  stem of the results: STEM.md, STEM.json, STEM-figure3.png (default
#            recipes/mlkd/results for small fsdd-connected, else OUT/SCALE/results)
# --max-steps N  stop every run after N updates (to check that a configuration starts);
#                runs go to OUT/SCALE-maxN
# --no-test  train only
#
# Every student is decoded on test by `peerseq evaluate RUN` (greedy CTC; a frozen teacher in a
# student run is not scored). Finished runs are reused (train --resume returns at once),
# pseudo-labels are cached once per seed in OUT/SCALE/CORPUS/sSEED/pseudo_labels under the
# teacher's weights hash, and a student run is trained again when its teacher was retrained. Extra arguments after `--` go to every `peerseq train` as overrides.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peerseq="${PEERSEQ:-$repo/.venv/bin/peerseq}"
python="${PYTHON:-$(dirname "$peerseq")/python}"

scale=small corpus=fsdd-connected data="" seeds=1 methods="" k=1
out=exp/mlkd results="" max_steps="" test_too=1
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --k) k="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --max-steps) max_steps="$2"; shift 2 ;;
    --no-test) test_too=""; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"
      exit 0 ;;
    *) echo "reproduce.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "reproduce.sh: $*" >&2; exit 2; }
all_methods="teacher_a teacher_b students seqkd mlkd multi mlkd_multi same kd_b three"
methods="${methods:-${all_methods% three}}"
for m in $methods; do
  [[ " $all_methods " == *" $m "* ]] || die "--methods: unknown '$m' ($all_methods)"
done
[[ "$k" =~ ^[1-9][0-9]*$ ]] || die "--k: expected a positive integer, got '$k'"
need=" $methods "
[[ "$need" =~ \ (seqkd|mlkd|multi|mlkd_multi|same|three)\  ]] && need+="teacher_a "
[[ "$need" =~ \ (multi|mlkd_multi|kd_b)\  ]] && need+="teacher_b "
wants() { [[ "$need" == *" $1 "* ]]; }

# ---- corpus and scale ----------------------------------------------------------------------------
scale_args=() size="$scale"
case "$corpus" in
  fsdd-connected) ;;  # common.yaml's default
  multi30k-speech)
    scale_args+=(data.corpus=exp/data/multi30k-speech-6000
      "data.prepare={name: multi30k-speech, limit: 6000, vocab_size: 2000}") ;;
  *) die "--corpus: expected fsdd-connected or multi30k-speech, got '$corpus'" ;;
esac
case "$scale" in
  tiny)
    if [[ "$corpus" == fsdd-connected ]]; then
      scale_args+=(data.corpus="$out/data/fsdd-connected-300"
        "data.prepare={name: fsdd-connected, sizes: {train: 300, dev: 40, test: 40}}")
    else
      scale_args+=(data.corpus="$out/data/multi30k-speech-300"
        "data.prepare={name: multi30k-speech, limit: 300, vocab_size: 1000}")
    fi
    # 40 training utterances, 2 epochs of 2 updates: the methods run end to end in seconds
    scale_args+=(data.limit_train=40 data.limit_dev=16 data.limit_test=20 train.max_epochs=2
      train.log_every=1 optim.lr=0.003) ;;
  small) ;;
  paper)
    [[ -n "$data" ]] || die "--scale paper needs --data (TIMIT or LibriSpeech manifests)"
    # section 5.1.1: SGD (momentum 0.9: ours, deepspeech.pytorch's), lr 3e-4 x0.95 per epoch,
    # mini-batches of 32 (~32 utterances of ~12 s), until dev CER rises (patience: ours)
    scale_args+=(optim.name=sgd optim.lr=0.0003 optim.momentum=0.9 data.limit_train=null
      data.limit_dev=null data.max_frames=40000 train.max_epochs=100 train.keep_last=5) ;;
  *) die "--scale: expected tiny, small or paper, got '$scale'" ;;
esac
if [[ -n "$data" ]]; then
  if [[ -f "$data" || "$data" == *=* ]]; then  # manifests: prepared once beside the runs
    prepared="$out/data-$scale"
    "$peerseq" prepare "$data" --out "$prepared" --split train
    data="$prepared"
  fi
  scale_args+=(data.corpus="$data" "data.prepare={}")
fi
runs="$out/$scale"
if [[ -n "$max_steps" ]]; then
  scale_args+=(train.max_steps="$max_steps")
  runs="$out/$scale-max$max_steps"
fi
if [[ -z "$results" ]]; then
  if [[ "$scale" == small && "$corpus" == fsdd-connected && -z "$max_steps" ]]; then
    results="$here/results"
  else results="$runs/results-$corpus"; fi
fi

newer() { [[ ! -e "$2" || "$1" -nt "$2" ]]; }  # newer SRC DST: DST missing or older than SRC
weights_of() { if [[ -d "$1/best" ]]; then echo "$1/best"; else echo "$1/checkpoints/latest"; fi; }

train() {  # train CONFIG RUN [overrides...]: train, then decode test with every student
  local config="$1" run="$2"; shift 2
  echo "== $(basename "$run") (seed $seed): $run"
  "$peerseq" train "$here/$config.yaml" "${scale_args[@]}" out_dir="$run" train.seed="$seed" \
    train.pseudo_labels_dir="$root/pseudo_labels" "$@" "${extra[@]}" --resume
  [[ -n "$test_too" ]] || return 0
  if newer "$(weights_of "$run")" "$run/eval/test.json"; then  # greedy CTC, each student
    "$peerseq" evaluate "$run" --split test
  fi
}

retrain_if_teacher_changed() {  # RUN TEACHER_RUN...: a student is never reused with a new teacher
  local run="$1" teacher weights; shift
  for teacher in "$@"; do
    weights="$(weights_of "$teacher")"
    if [[ -f "$run/config.yaml" && "$weights" -nt "$run/config.yaml" ]]; then
      echo "== $run: its teacher $teacher was retrained since; training it again"
      rm -rf "$run"
      return 0
    fi
  done
}

for seed in $seeds; do
  root="$runs/$corpus/s$seed"
  # every student run: the scale's sizes, both teachers from their runs, k hypotheses each
  sizes=(peers.a.model.size="$size" peers.b.model.size="$size")
  ta=(peers.teacher_a.model.size="$size" peers.teacher_a.model.init_from="$root/teacher_a:teacher_a")
  tb=(peers.teacher_b.model.size="$size" peers.teacher_b.model.init_from="$root/teacher_b:teacher_b")
  kk=(links.0.k="$k" links.1.k="$k")
  kk4=("${kk[@]}" links.2.k="$k" links.3.k="$k")
  wants teacher_a && train teacher_a "$root/teacher_a" peers.teacher_a.model.size="$size"
  wants teacher_b && train teacher_b "$root/teacher_b" peers.teacher_b.model.size="$size"
  wants students && train students "$root/students" "${sizes[@]}"
  if wants seqkd; then
    retrain_if_teacher_changed "$root/seqkd" "$root/teacher_a"
    train seqkd "$root/seqkd" "${sizes[@]}" "${ta[@]}" "${kk[@]}"
  fi
  if wants mlkd; then
    retrain_if_teacher_changed "$root/mlkd" "$root/teacher_a"
    train mlkd "$root/mlkd" "${sizes[@]}" "${ta[@]}" "${kk[@]}"
  fi
  if wants multi; then
    retrain_if_teacher_changed "$root/multi" "$root/teacher_a" "$root/teacher_b"
    train multi "$root/multi" "${sizes[@]}" "${ta[@]}" "${tb[@]}" "${kk4[@]}"
  fi
  if wants mlkd_multi; then
    retrain_if_teacher_changed "$root/mlkd_multi" "$root/teacher_a" "$root/teacher_b"
    train mlkd_multi "$root/mlkd_multi" "${sizes[@]}" "${ta[@]}" "${tb[@]}" "${kk4[@]}"
  fi
  if wants same; then  # Table 5: two students of one structure, otherwise exactly mlkd
    retrain_if_teacher_changed "$root/mlkd_aa" "$root/teacher_a"
    train mlkd "$root/mlkd_aa" "${sizes[@]}" "${ta[@]}" "${kk[@]}" peers.b.model.preset=blstm_ctc_wide
    retrain_if_teacher_changed "$root/mlkd_bb" "$root/teacher_a"
    train mlkd "$root/mlkd_bb" "${sizes[@]}" "${ta[@]}" "${kk[@]}" peers.a.model.preset=blstm_ctc_deep
  fi
  if wants kd_b; then  # seqKD and MLKD from Teacher B alone (not a paper table)
    retrain_if_teacher_changed "$root/seqkd_b" "$root/teacher_b"
    train seqkd_b "$root/seqkd_b" "${sizes[@]}" "${tb[@]}" "${kk[@]}"
    retrain_if_teacher_changed "$root/mlkd_b" "$root/teacher_b"
    train mlkd_b "$root/mlkd_b" "${sizes[@]}" "${tb[@]}" "${kk[@]}"
  fi
  if wants three; then
    retrain_if_teacher_changed "$root/mlkd_three" "$root/teacher_a"
    train mlkd_three "$root/mlkd_three" "${sizes[@]}" "${ta[@]}" "${kk[@]}" links.2.k="$k" \
      peers.c.model.size="$size"
  fi
done

[[ -n "$test_too" ]] || exit 0
"$python" "$here/report.py" --root "$runs" --corpus "$corpus" --scale "$scale" --results "$results"

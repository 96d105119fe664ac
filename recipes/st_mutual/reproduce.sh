#!/usr/bin/env bash
# Paper 000 (Zhao et al., mutual learning between ST and MT): train every Table 1 / Table 2 system,
# decode the test set with beam 5, and write results.md / results.json.
#
#   recipes/st_mutual/reproduce.sh --scale small --pair en-de --seeds "1 2"
#
# --scale tiny   the test suite's size (300 sentences, d=32 models, 2 epochs); minutes
#         small  5,000 training sentences of multi30k-speech, small models; ~90 min per pair and
#                seed on a 2-core CPU (see common.yaml)
#         paper  the paper's configuration (12/6-layer Transformers, 40k frames per batch,
#                C = 5000) on a prepared corpus or lhotse manifest given with --corpus (MuST-C);
#                for a GPU
# --pair   en-de | en-fr (the target column and its sentencepiece model)
# --seeds  each seed repeats the whole pipeline, pre-training included
# --methods  a subset of: asr mt mt_joint e2e mtl kd ml ml_joint cascade (default: all);
#            what a method needs (asr, mt, mt_joint) is trained too
# --out    root of the runs (default exp/st_mutual); runs are OUT/SCALE/PAIR/sSEED/METHOD
# --results  where results.{md,json} go (default recipes/st_mutual/results for small, else
#            OUT/SCALE/results)
# --corpus   a prepared corpus directory, or lhotse CutSet manifests (paper scale):
#            train=TRAIN.jsonl.gz,dev=DEV.jsonl.gz,test=TEST.jsonl.gz, prepared once into
#            OUT/data-SCALE (supervision text: English transcript, language "en"; translation
#            in custom, e.g. {"de": "..."}); see `peerseq prepare --help`
# --max-steps N  stop every run after N updates (to check that a configuration starts)
# --no-test  train only: no test decoding, no cascade
#
# Finished runs are reused (train --resume on a finished run returns at once; a changed config
# or override does not retrain it: delete the run directory for that), and test decoding is
# redone only when a run's weights are newer than it. Runs stopped by --max-steps go to
# OUT/SCALE-maxN, never mixed with full ones. Paths are relative to the current directory.
# Extra arguments after `--` are passed to every `peerseq train` as overrides.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peerseq="${PEERSEQ:-$repo/.venv/bin/peerseq}"
python="${PYTHON:-$(dirname "$peerseq")/python}"

scale=small pair=en-de seeds=1 methods="" out=exp/st_mutual results="" corpus="" max_steps=""
test_too=1
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --pair) pair="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    --max-steps) max_steps="$2"; shift 2 ;;
    --no-test) test_too=""; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"
      exit 0 ;;
    *) echo "reproduce.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$pair" in
  en-de|en-fr) tgt="${pair#en-}" ;;
  *) echo "reproduce.sh: --pair: expected en-de or en-fr, got '$pair'" >&2; exit 2 ;;
esac
all_methods="asr mt mt_joint e2e mtl kd ml ml_joint cascade"
methods="${methods:-$all_methods}"
for m in $methods; do
  [[ " $all_methods " == *" $m "* ]] || {
    echo "reproduce.sh: --methods: unknown '$m' (known: $all_methods)" >&2; exit 2; }
done
# what each method needs trained first
need=" $methods "
[[ "$need" =~ \ (e2e|mtl|kd|ml|ml_joint|cascade)\  ]] && need+="asr "
[[ "$need" =~ \ (mtl|kd|ml|cascade)\  ]] && need+="mt "
[[ "$need" == *" ml_joint "* ]] && need+="mt_joint "
wants() { [[ "$need" == *" $1 "* ]]; }

# ---- scale: data, model size, schedule ---------------------------------------------------------
size="$scale" scale_args=() asr_args=() C=""
case "$scale" in
  tiny)
    scale_args=(data.corpus=exp/data/multi30k-speech-300 data.prepare.limit=300
      data.prepare.vocab_size=1000 data.limit_train=null data.limit_dev=40 data.limit_test=60
      data.max_frames=12000 data.max_tokens=1000 train.max_epochs=2 train.valid_every=null
      train.log_every=4
      optim.warmup=20)
    ;;
  small) ;;  # common.yaml's defaults
  paper)
    [[ -n "$corpus" ]] || { echo "reproduce.sh: --scale paper needs --corpus (MuST-C)" >&2; exit 2; }
    # fairseq S2T's MuST-C recipe, which the paper follows: lr 2e-3, 10k warm-up steps, 40k
    # frames per batch; 8000-piece vocabularies; the whole dev set for validation
    scale_args=(data.limit_train=null data.limit_dev=null data.max_frames=40000
      data.max_tokens=40000 optim.warmup=10000 train.max_epochs=100 train.valid_every=null
      train.keep_last=5)
    asr_args=(peers.asr.model.preset=asr_transformer peers.asr.loss=nll)  # fairseq's ASR
    C=5000
    ;;
  *) echo "reproduce.sh: --scale: expected tiny, small or paper, got '$scale'" >&2; exit 2 ;;
esac
if [[ -n "$corpus" ]]; then
  if [[ -f "$corpus" || "$corpus" == *=* ]]; then  # manifests: prepared once beside the runs
    prepared="$out/data-$scale"
    "$peerseq" prepare "$corpus" --out "$prepared" --split train
    corpus="$prepared"
  fi
  scale_args+=(data.corpus="$corpus" data.prepare={})
fi
runs="$out/$scale"
if [[ -n "$max_steps" ]]; then
  scale_args+=(train.max_steps="$max_steps")
  runs="$out/$scale-max$max_steps"
fi
if [[ -z "$results" ]]; then
  if [[ "$scale" == small && -z "$max_steps" ]]; then results="$here/results"
  else results="$runs/results"; fi
fi

peers_of() {
  case "$1" in
    asr) echo asr ;; mt|mt_joint) echo mt ;; e2e) echo st ;; *) echo "st mt" ;;
  esac
}

train() {  # train METHOD RUN_ROOT [overrides...]
  local method="$1" root="$2"; shift 2
  local args=(out_dir="$root/$method" train.seed="$seed"
    data.fields.target.column="$tgt" data.fields.target.tokenizer="spm_$tgt")
  if [[ "$method" == *_joint ]]; then
    args+=(data.fields.source.tokenizer="spm_$pair" data.fields.target.tokenizer="spm_$pair")
  fi
  for p in $(peers_of "$method"); do args+=(peers.$p.model.size="$size"); done
  echo "== $method (seed $seed): $root/$method"
  "$peerseq" train "$here/$method.yaml" "${scale_args[@]}" "${args[@]}" "$@" "${extra[@]}" \
    --resume
  evaluate "$root/$method"
}

evaluate() {  # test decoding, redone only when the weights are newer than it
  [[ -n "$test_too" ]] || return 0
  local run="$1" weights="$1/best"
  [[ -d "$weights" ]] || weights="$1/checkpoints/latest"
  if [[ ! -f "$run/eval/test.json" || "$weights" -nt "$run/eval/test.json" ]]; then
    "$peerseq" evaluate "$run" --split test
  fi
}

steps_per_epoch() {  # updates in the first epoch of RUN (its first "epoch" record)
  "$python" - "$1/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
ends = [r["step"] for r in rows if r["split"] == "epoch"]
if not ends:
    sys.exit(f"{sys.argv[1]}: no epoch finished, so beta's cycle C cannot be one epoch; "
             "train longer or give C with: -- links.0.C=N")
print(ends[0])
EOF
}

for seed in $seeds; do
  root="$runs/$pair/s$seed"
  wants asr && train asr "$root" "${asr_args[@]}"
  wants mt && train mt "$root"
  wants mt_joint && train mt_joint "$root"
  # beta's cycle: the paper's C = 5000 updates at paper scale; at smaller scales one cycle per
  # epoch, measured from the ASR run (same sampler, same batches as the ST runs)
  link=()
  if wants kd || wants ml || wants ml_joint; then
    link=(links.0.C="${C:-$(steps_per_epoch "$root/asr")}")
  fi
  asr_init=(peers.st.model.init_encoder_from="$root/asr:asr")
  mt_init=(peers.mt.model.init_from="$root/mt:mt")
  wants e2e && train e2e "$root" "${asr_init[@]}"
  wants mtl && train mtl "$root" "${asr_init[@]}" "${mt_init[@]}"
  wants kd && train kd "$root" "${asr_init[@]}" "${mt_init[@]}" "${link[@]}"
  wants ml && train ml "$root" "${asr_init[@]}" "${mt_init[@]}" "${link[@]}"
  wants ml_joint && train ml_joint "$root" "${asr_init[@]}" \
    peers.mt.model.init_from="$root/mt_joint:mt" "${link[@]}"
  if [[ -n "$test_too" ]] && wants cascade; then
    stale=""
    for run in asr mt; do
      weights="$root/$run/best"; [[ -d "$weights" ]] || weights="$root/$run/checkpoints/latest"
      [[ "$weights" -nt "$root/cascade/cascade.test.jsonl" ]] && stale=1
    done
    if [[ ! -f "$root/cascade/cascade.test.jsonl" || -n "$stale" ]]; then
      echo "== cascade (seed $seed): $root/asr -> $root/mt"
      "$peerseq" cascade --asr "$root/asr:asr" --mt "$root/mt:mt" --out "$root/cascade" --split test
    fi
  fi
done

"$python" "$here/report.py" --root "$runs" --scale "$scale" --results "$results" \
  --recipe "$here"

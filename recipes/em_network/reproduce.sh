#!/usr/bin/env bash
# Paper 002 (Yoon et al., EM-Network): train the EM-Network and its baselines, export and decode
# the sequence models, and write results.md / results.json and the figures.
#
#   recipes/em_network/reproduce.sh --scale small --task asr --seeds "1 2"
#   recipes/em_network/reproduce.sh --scale small --task mt --pair de-en
#
# --scale tiny   the test suite's size (tiny models, a few hundred utterances, prepared under
#                OUT/data); minutes
#         small  ASR: 2,000 fsdd-connected utterances, Conformer-CTC d 144 x 6, 6 epochs;
#                MT: 6,000 Multi30k pairs, Transformer d 128 3+3, 5 epochs (see *_common.yaml);
#                about 40 (ASR) and 50 (MT, with the sweep) minutes per seed on a 2-core CPU
#         paper  the paper's configuration: Conformer-CTC 16 x d 176 (appendix D) with a
#                Conformer-CTC Large teacher; IWSLT'14-size Transformer (d 512, 6+6); for a GPU,
#                on a corpus given with --data
# --task   asr | mt
# --corpus (asr) fsdd-connected | multi30k-speech   (bundled corpora, prepared on first use)
# --pair   (mt) de-en | en-de
# --data   a prepared corpus directory, or lhotse manifests train=A,dev=B,test=C (prepared once
#          into OUT/data-SCALE-TASK), replacing the bundled corpus (e.g. LibriSpeech at paper scale)
# --seeds  each seed repeats the whole pipeline, teachers included
# --methods  asr: ctc em teacher skd; mt: mt em rdrop teacher seqkd (default: all; a method's
#            teacher is trained too)
# --sweep  mt: Figure 6's points besides alpha=2, lambda=0.5, as "alpha=A" / "lambda=L" words
#          (default at small scale: alpha=0 alpha=1 alpha=3 alpha=4 lambda=0.1 lambda=0.3
#          lambda=0.7; "none" for no sweep)
# --out    root of the runs (default exp/em_network): OUT/SCALE/TASK/CORPUS|PAIR/sSEED/METHOD
# --results  stem of the results: STEM.md, STEM.json, figures in STEM's folder/figures
#            (default recipes/em_network/results for small, else OUT/SCALE/results)
# --max-steps N  stop every run after N updates (to check that a configuration starts);
#                runs go to OUT/SCALE-maxN
# --no-test  train only
#
# Every reported system is the EXPORTED sequence model (peerseq export RUN --peer seq): the
# auxiliary network and teachers are not in it. Finished runs are reused (train --resume returns
# at once); exports and test decoding are redone only when a run's weights are newer.
# Extra arguments after `--` are passed to every `peerseq train` as overrides.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peerseq="${PEERSEQ:-$repo/.venv/bin/peerseq}"
python="${PYTHON:-$(dirname "$peerseq")/python}"

scale=small task="" corpus=fsdd-connected pair=de-en data="" seeds=1 methods="" sweep=""
out=exp/em_network results="" max_steps="" test_too=1
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --task) task="$2"; shift 2 ;;
    --corpus) corpus="$2"; shift 2 ;;
    --pair) pair="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --sweep) sweep="$2"; shift 2 ;;
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
case "$task" in
  asr) all_methods="ctc em teacher skd" ;;
  mt) all_methods="mt em rdrop teacher seqkd" ;;
  *) die "--task: expected asr or mt, got '$task'" ;;
esac
methods="${methods:-$all_methods}"
for m in $methods; do
  [[ " $all_methods " == *" $m "* ]] || die "--methods: unknown '$m' for $task ($all_methods)"
done
need=" $methods "
[[ "$need" =~ \ (skd|seqkd)\  ]] && need+="teacher "
wants() { [[ "$need" == *" $1 "* ]]; }

# ---- task, corpus, scale -------------------------------------------------------------------------
scale_args=() teacher_size=() sub="" size="$scale"
if [[ "$task" == asr ]]; then
  case "$corpus" in
    fsdd-connected) ;;  # asr_common.yaml's default
    multi30k-speech)
      scale_args+=(data.corpus=exp/data/multi30k-speech-6000
        "data.prepare={name: multi30k-speech, limit: 6000, vocab_size: 2000}") ;;
    *) die "--corpus: expected fsdd-connected or multi30k-speech, got '$corpus'" ;;
  esac
  sub="$corpus"
  case "$scale" in
    tiny)
      if [[ "$corpus" == fsdd-connected ]]; then
        scale_args+=(data.corpus="$out/data/fsdd-connected-300"
          "data.prepare={name: fsdd-connected, sizes: {train: 300, dev: 40, test: 40}}")
      else
        scale_args+=(data.corpus="$out/data/multi30k-speech-300"
          "data.prepare={name: multi30k-speech, limit: 300, vocab_size: 1000}")
      fi
      scale_args+=(data.limit_train=null data.limit_dev=null peers.seq.model.size=tiny
        train.max_epochs=3 train.log_every=5 optim.warmup=20)
      teacher_size=("{d_model: 48, heads: 2, ffn: 96, layers: 3, dropout: 0.0}") ;;
    small) teacher_size=("{d_model: 192, heads: 4, ffn: 768, layers: 8}") ;;
    paper)
      [[ -n "$data" ]] || die "--scale paper needs --data (LibriSpeech manifests)"
      # appendix D: Conformer-CTC 16 x d 176, 100 epochs; teacher: Conformer-CTC Large
      # (NeMo: 18 x d 512, 8 heads). AdamW; our lr/warm-up, not NeMo's Noam scale "5.0".
      scale_args+=(peers.seq.model.size=paper data.limit_train=null data.limit_dev=null
        data.max_frames=60000 optim.warmup=10000 train.max_epochs=100 train.keep_last=5)
      teacher_size=("{d_model: 512, heads: 8, ffn: 2048, layers: 18, conv_kernel: 31}") ;;
    *) die "--scale: expected tiny, small or paper, got '$scale'" ;;
  esac
else
  case "$pair" in
    de-en|en-de) src="${pair%-*}" tgt="${pair#*-}" ;;
    *) die "--pair: expected de-en or en-de, got '$pair'" ;;
  esac
  sub="$pair"
  scale_args+=(data.fields.source.column="$src" data.fields.source.tokenizer="spm_$src"
    data.fields.target.column="$tgt" data.fields.target.tokenizer="spm_$tgt")
  case "$scale" in
    tiny)
      scale_args+=(data.corpus="$out/data/multi30k-text-300"
        "data.prepare={name: multi30k, limit: 300, vocab_size: 500}" data.limit_train=null
        data.limit_dev=40 data.limit_test=60 train.max_epochs=3 train.log_every=5
        optim.warmup=20 "peers.seq.model.overrides={dropout: 0.1}" peers.seq.model.size=tiny)
      teacher_size=("{d_model: 48, heads: 2, ffn: 96, enc_layers: 2, dec_layers: 1, dropout: 0.0}")
      sweep="${sweep:-alpha=0 lambda=0.3}" ;;
    small)
      teacher_size=("{d_model: 256, heads: 4, ffn: 1024, enc_layers: 4, dec_layers: 4}")
      sweep="${sweep:-alpha=0 alpha=1 alpha=3 alpha=4 lambda=0.1 lambda=0.3 lambda=0.7}" ;;
    paper)
      # the IWSLT'14 Transformer (fairseq transformer_iwslt_de_en: d 512, 4 heads, ffn 1024,
      # 6+6); teacher: Transformer big. On Multi30k unless --data gives IWSLT'14.
      scale_args+=("peers.seq.model.overrides={}" peers.seq.model.size=paper
        data.limit_train=null data.limit_dev=null data.max_tokens=4096 optim.warmup=4000
        optim.lr=0.0005 train.max_epochs=75 train.keep_last=5)
      teacher_size=("{d_model: 1024, heads: 16, ffn: 4096, enc_layers: 6, dec_layers: 6}") ;;
    *) die "--scale: expected tiny, small or paper, got '$scale'" ;;
  esac
fi
[[ "$sweep" == none ]] && sweep=""
if [[ -n "$data" ]]; then
  if [[ -f "$data" || "$data" == *=* ]]; then  # manifests: prepared once beside the runs
    prepared="$out/data-$scale-$task"
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
  if [[ "$scale" == small && -z "$max_steps" ]]; then results="$here/results"
  else results="$runs/results"; fi
fi

newer() { [[ ! -e "$2" || "$1" -nt "$2" ]]; }  # newer SRC DST: DST missing or older than SRC

train() {  # train CONFIG RUN [overrides...]: train, export seq, decode test with the export
  local config="$1" run="$2"; shift 2
  echo "== $(basename "$run") (seed $seed): $run"
  "$peerseq" train "$here/$config.yaml" "${scale_args[@]}" out_dir="$run" train.seed="$seed" \
    "$@" "${extra[@]}" --resume
  [[ -n "$test_too" ]] || return 0
  local weights="$run/best"
  [[ -d "$weights" ]] || weights="$run/checkpoints/latest"
  if newer "$weights" "$run/export/export.json" || [[ ! -f "$run/export/eval/test.json" ]]; then
    rm -rf "$run/export"
    "$peerseq" export "$run" --peer seq --out "$run/export" --evaluate test
  fi
}

retrain_if_teacher_changed() {  # RUN TEACHER_RUN: a student is never reused with a new teacher
  local weights="$2/best"
  [[ -d "$weights" ]] || weights="$2/checkpoints/latest"
  if [[ -f "$1/config.yaml" && "$weights" -nt "$1/config.yaml" ]]; then
    echo "== $1: its teacher $2 was retrained since; training it again"
    rm -rf "$1"
  fi
}

for seed in $seeds; do
  root="$runs/$task/$sub/s$seed"
  teacher=(peers.seq.model.overrides="${teacher_size[0]}")
  from_teacher=(peers.teacher.model.overrides="${teacher_size[0]}" peers.teacher.model.size="$size"
    peers.teacher.model.init_from="$root/teacher:seq")
  if [[ "$task" == asr ]]; then
    wants ctc && train ctc "$root/ctc"
    wants em && train em_ctc "$root/em"
    wants teacher && train teacher_ctc "$root/teacher" "${teacher[@]}"
    wants skd && retrain_if_teacher_changed "$root/skd" "$root/teacher" &&
      train skd "$root/skd" "${from_teacher[@]}"
  else
    wants mt && train mt "$root/mt"
    wants em && train em_aed "$root/em"
    wants rdrop && train rdrop "$root/rdrop"
    wants teacher && train teacher_mt "$root/teacher" "${teacher[@]}"
    wants seqkd && retrain_if_teacher_changed "$root/seqkd" "$root/teacher" &&
      train seqkd "$root/seqkd" "${from_teacher[@]}"
    # Figure 6: alpha in {0..4} at lambda 0.5, lambda in {0.1..0.7} at alpha 2 (em is the
    # shared point alpha 2, lambda 0.5)
    wants em || sweep=""
    for point in $sweep; do
      case "$point" in
        alpha=*) train em_aed "$root/em_alpha${point#alpha=}" links.0.weight="${point#alpha=}" ;;
        lambda=*) train em_aed "$root/em_lambda${point#lambda=}" \
          peers.em.model.mask_prob="${point#lambda=}" ;;
        *) die "--sweep: expected alpha=A or lambda=L, got '$point'" ;;
      esac
    done
  fi
done

[[ -n "$test_too" ]] || exit 0
"$python" "$here/report.py" --root "$runs" --scale "$scale" --results "$results"

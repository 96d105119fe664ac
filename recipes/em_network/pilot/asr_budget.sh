#!/usr/bin/env bash
# Issue 20, ASR pilot: the plain Conformer-CTC (d 144 x 6) on multi30k-speech with and without
# SpecAugment, to choose SpecAugment, the number of training utterances and the epochs from dev
# WER. The corpus: all 29,000 sentences, synthesised, with the test split spoken only by eSpeak
# variants m3, f4 and Annie, which train and dev never use (--test-speakers). Two one-thread
# processes side by side (argument: ctc, specaug or both); every run resumes where it stopped
# (--resume). N=... sets the number of training utterances (default 6,000); TOK=... the
# transcript's tokenizer: chars (the default), or spm_asr, 256 sentencepiece pieces of the
# normalised transcripts (prepare --asr-vocab-size): eSpeak speaks 19 characters a second and
# the x4-subsampled encoder has 25 frames, so CTC could not fit 6% of the utterances on chars.
set -euo pipefail
cd "$(dirname "$0")/../../.."
N=${N:-6000}  # training utterances (the first N)
TOK=${TOK:-chars}
VALID=${VALID:-null}  # validate every VALID updates too (null: once an epoch)
C=(data.corpus=exp/data/multi30k-speech-29k
   "data.prepare={name: multi30k-speech, vocab_size: 4000, test_speakers: [m3, f4, Annie], asr_vocab_size: 256}"
   data.fields.transcript.tokenizer=$TOK
   data.limit_train=$N data.limit_dev=300 optim.warmup=400 train.bf16=true
   train.max_epochs=30 train.patience=5 train.num_threads=1 train.log_every=50
   train.valid_every=$VALID data.num_buckets=30)  # 30 buckets (icefall's): 10 pad 16% of all 29,000
mkdir -p exp/pilot20
run() {  # NAME [OVERRIDE...]
    local name=$1; shift
    [ "$TOK" = chars ] || name=${name/ctc/ctc_$TOK}
    OMP_NUM_THREADS=1 .venv/bin/peerseq train recipes/em_network/ctc.yaml "${C[@]}" "$@" \
        out_dir=exp/pilot20/asr_${name} --resume >> exp/pilot20/asr_${name}.log 2>&1
}
# fbank80 of every split once, both cores, before the two runs would each compute them
.venv/bin/python -c "from peerseq.data.features import precomputed as p
for s in ('train', 'dev', 'test'): p('exp/data/multi30k-speech-29k', s, 'fbank80', num_jobs=2)"
case ${1:-both} in  # which runs: ctc, specaug or both side by side
    ctc) run ctc_n$N ;;
    specaug) run ctc_specaug_n$N "data.augment={specaugment: {}}" ;;
    both) run ctc_n$N & run ctc_specaug_n$N "data.augment={specaugment: {}}" & wait ;;
esac

"""Evaluation metrics: WER/CER (jiwer), BLEU/chrF (sacreBLEU), token repetition, model cost."""

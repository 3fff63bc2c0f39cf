"""Noisy-channel reranking (fairseq's ``examples/noisychannel``): n-best lists, their component
scores (direct model, channel model, language model), fairseq's ``get_score`` and weight tuning."""

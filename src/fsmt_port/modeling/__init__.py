"""The encoder-decoder transformer, laid out like fairseq's (and transformers' FSMT)."""

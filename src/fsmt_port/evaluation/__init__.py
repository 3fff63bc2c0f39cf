"""Building blocks of ``run_eval`` and ``run_eval_search``, one job per module.

* ``data``: load and check the source/reference pair (aligned, non-empty, readable).
* ``scoring``: sacrebleu BLEU with the reference statistics computed once.
* ``oom``: translate batch by batch, halving the batch on out-of-memory.
* ``corpus``: the whole "lines in, detokenized best hypotheses out" step, through fsmt-translate's windows
  and part files (``translation.corpus``; torchrun ranks via ``translation.distributed``).
* ``grid``, ``cache``, ``report``, ``plot``, ``config_update``: the search.
* ``options``, ``session``: what both command lines share.
"""

"""The row order fairseq's hub gives a list of sentences, for results that depend on it.

``hub.generate(sentences)`` (and fairseq-interactive) builds a ``LanguagePairDataset``
(``shuffle=True``) and batches it with ``numpy_seed(seed + epoch = 2)``: the indices are a
seeded random permutation, stably sorted by source length; the collater then sorts each
batch by source length, descending (``torch.sort``). Each row's ``sample["id"]`` is its
position in the caller's list. Sampling consumes the RNG row by row and diverse beam
search indexes its overlap table by those ids, so both decode in this order to
reproduce fairseq's results; beam search does not depend on it.
"""

from __future__ import annotations

import numpy as np
import torch

HUB_BATCH_SEED = 2  # fairseq's get_batch_iterator: numpy_seed(seed=1 + epoch=1)


def hub_order(src_lengths: list[int]) -> list[int]:
    """Positions of ``src_lengths`` (tokens incl. </s>) in fairseq's row order for one batch."""
    state = np.random.get_state()
    np.random.seed(HUB_BATCH_SEED)
    try:
        permutation = np.random.permutation(len(src_lengths)).astype(np.int64)
    finally:
        np.random.set_state(state)
    sizes = np.asarray(src_lengths, dtype=np.int64)
    ordered = permutation[np.argsort(sizes[permutation], kind="mergesort")]
    descending = torch.tensor(sizes[ordered]).sort(descending=True)[1]
    return [int(ordered[i]) for i in descending.tolist()]

"""The decoder's cache storages are reused across generate calls: no stale value may leak into a result."""

from __future__ import annotations

import torch

import golden
from fsmt_port import FSMTForConditionalGeneration, FSMTTokenizer
from fsmt_port.translation.translator import pad_left


def test_reused_cache_storage_gives_identical_results(converted):
    folder = converted(golden.SMALL_MODEL)
    model = FSMTForConditionalGeneration.from_pretrained(folder)
    tokenizer = FSMTTokenizer.from_pretrained(folder)
    lines = golden.flickr_lines("en")
    long_batch = pad_left([tokenizer.encode(line) for line in lines[:24]])
    short_batch = pad_left([tokenizer.encode(line) for line in lines[24:30]])
    pool = model.model.decoder.cache_pool

    first = model.generate(short_batch, num_beams=5, return_dict_in_generate=True).sequences
    assert pool._free, "generate gave its cache storages back to the decoder's pool"
    model.generate(long_batch, num_beams=4, return_dict_in_generate=True)  # fills the storages with other values
    kept = {s.data_ptr() for s in pool._free}
    again = model.generate(short_batch, num_beams=5, return_dict_in_generate=True).sequences
    assert {s.data_ptr() for s in pool._free} == kept  # the same storages were taken and given back
    assert torch.equal(first, again)

    fresh = FSMTForConditionalGeneration.from_pretrained(folder)  # an empty pool
    assert torch.equal(fresh.generate(short_batch, num_beams=5, return_dict_in_generate=True).sequences, first)
    pool.clear()
    assert not pool._free

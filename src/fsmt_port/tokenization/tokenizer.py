"""fairseq-hub-exact tokenizer: moses -> fastBPE -> ids, and ids -> text.

Reproduces what ``TransformerModel.from_pretrained(..., tokenizer="moses",
bpe="fastbpe")`` does in ``hub.encode`` / ``hub.string`` / ``hub.decode``.
The model folder uses transformers' FSMT file layout (``vocab-src.json``,
``vocab-tgt.json``, ``merges.txt``, ``tokenizer_config.json``), so
``transformers.FSMTTokenizer.from_pretrained`` reads the same folder.

Differences from transformers' FSMTTokenizer, all for fairseq parity: no
punctuation normalization unless asked for, sources are left-padded, and
decoding follows fairseq (``<unk>`` and ``<pad>`` are printed, not dropped).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping, Sequence

from fsmt_port.tokenization.bpe import (
    DEFAULT_CACHE_SIZE,
    END_OF_WORD,
    FastBPE,
    Merge,
    read_bpecodes,
    read_merges,
    word_to_bpe_string,
    write_merges,
)
from fsmt_port.fairseq.dictionary import (
    SPECIAL_SYMBOLS,
    FairseqDictionary,
    dictionary_from_bpe_vocab,
    symbol_to_piece,
    to_bpe_vocab,
)
from fsmt_port.errors import ConfigError, DictionaryFormatError, InputError
from fsmt_port.files import CONVERT_HINT, atomic_file, read_json
from fsmt_port.tokenization.batch_encoding import BatchEncoding
from fsmt_port.tokenization.padding import left_pad

SRC_VOCAB_FILE = "vocab-src.json"
TGT_VOCAB_FILE = "vocab-tgt.json"
MERGES_FILE = "merges.txt"
CONFIG_FILE = "tokenizer_config.json"


@functools.lru_cache(maxsize=None)
def _moses_tokenizer(lang: str):
    import sacremoses

    return sacremoses.MosesTokenizer(lang=lang)


@functools.lru_cache(maxsize=None)
def _moses_detokenizer(lang: str):
    import sacremoses

    return sacremoses.MosesDetokenizer(lang=lang)


@functools.lru_cache(maxsize=None)
def _moses_normalizer(lang: str):
    import sacremoses

    return sacremoses.MosesPunctNormalizer(lang=lang)


def _as_id_list(ids) -> list[int]:
    if hasattr(ids, "tolist"):  # torch / numpy, without importing them
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InputError(f"expected a sequence of token ids, got {type(ids).__name__}")
    ids = [int(i) for i in ids]
    if ids and min(ids) < 0:
        raise InputError(f"token ids must be >= 0, got {min(ids)}")
    return ids


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise InputError(f"expected text as str, got {type(text).__name__}: {text!r:.80}")
    return text


class FSMTTokenizer:
    """Source encoding and target decoding exactly as fairseq's hub does them."""

    bos_token_id = 0
    pad_token_id = 1
    eos_token_id = 2
    unk_token_id = 3

    def __init__(
        self,
        src_vocab: Mapping[str, int],
        tgt_vocab: Mapping[str, int],
        merges: Sequence[Merge],
        langs: Sequence[str],
        *,
        moses_punct_normalization: bool = False,
        do_lower_case: bool = False,
        model_max_length: int = 1024,
    ) -> None:
        if not isinstance(langs, (list, tuple)) or len(langs) != 2 or not all(isinstance(x, str) and x for x in langs):
            raise ConfigError(f"langs must be [source_lang, target_lang], e.g. ['en', 'de']; got {langs!r}")
        self.src_lang, self.tgt_lang = langs
        self.src_vocab = dict(src_vocab)
        self.tgt_vocab = dict(tgt_vocab)
        # fairseq-form dictionaries (validate the vocabs; give hub.src_dict/tgt_dict.string).
        self.src_dict: FairseqDictionary = dictionary_from_bpe_vocab(self.src_vocab, source="source vocab")
        self.tgt_dict: FairseqDictionary = dictionary_from_bpe_vocab(self.tgt_vocab, source="target vocab")
        self._tgt_pieces = [symbol_to_piece(s) for s in self.tgt_dict.symbols]
        self.bpe = FastBPE(merges)
        self.moses_punct_normalization = bool(moses_punct_normalization)
        self.do_lower_case = bool(do_lower_case)
        self.model_max_length = int(model_max_length)
        self._src_word_ids = functools.lru_cache(DEFAULT_CACHE_SIZE)(
            functools.partial(self._word_ids, self.src_vocab)
        )
        self._tgt_word_ids = functools.lru_cache(DEFAULT_CACHE_SIZE)(
            functools.partial(self._word_ids, self.tgt_vocab)
        )

    # --- construction / files ---------------------------------------------

    @classmethod
    def from_fairseq_files(
        cls,
        src_dict: str | os.PathLike,
        tgt_dict: str | os.PathLike,
        bpecodes: str | os.PathLike,
        src_lang: str,
        tgt_lang: str,
        **kwargs,
    ) -> "FSMTTokenizer":
        """Build from a fairseq archive's ``dict.SRC.txt``, ``dict.TGT.txt`` and ``bpecodes``."""
        src = FairseqDictionary.load(src_dict, what="source dictionary")
        tgt = FairseqDictionary.load(tgt_dict, what="target dictionary")
        return cls(
            to_bpe_vocab(src.symbols),
            to_bpe_vocab(tgt.symbols),
            read_bpecodes(bpecodes),
            [src_lang, tgt_lang],
            **kwargs,
        )

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *, revision: str | None = None,
                        local_files_only: bool = False, cache_dir: str | os.PathLike | None = None,
                        **overrides) -> "FSMTTokenizer":
        """Load a converted model folder (transformers FSMT tokenizer layout) or a hub repo id."""
        from fsmt_port.hub import TOKENIZER_FILES, resolve_model_dir

        folder = os.fspath(resolve_model_dir(folder, revision=revision, local_files_only=local_files_only,
                                             files=TOKENIZER_FILES, cache_dir=cache_dir))
        config = read_json(os.path.join(folder, CONFIG_FILE), "tokenizer config")
        if not isinstance(config, dict) or "langs" not in config:
            raise ConfigError(
                f"{os.path.join(folder, CONFIG_FILE)}: expected a JSON object with \"langs\": "
                f"[source_lang, target_lang]. {CONVERT_HINT}"
            )
        kwargs = {
            "moses_punct_normalization": config.get("moses_punct_normalization", False),
            "do_lower_case": config.get("do_lower_case", False),
            "model_max_length": config.get("model_max_length", 1024),
        }
        for key, value in kwargs.items():
            if not (isinstance(value, bool) if key != "model_max_length" else
                    isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"{os.path.join(folder, CONFIG_FILE)}: {key}={value!r:.60} must be "
                                  f"{'a positive integer' if key == 'model_max_length' else 'true or false'}")
        kwargs.update(overrides)
        vocabs = []
        for name, what in ((SRC_VOCAB_FILE, "source vocab"), (TGT_VOCAB_FILE, "target vocab")):
            vocab = read_json(os.path.join(folder, name), what)
            if not isinstance(vocab, dict):
                raise DictionaryFormatError(f"{os.path.join(folder, name)}: expected a JSON object "
                                            f"{{token: id}}, got {type(vocab).__name__}. {CONVERT_HINT}")
            vocabs.append(vocab)
        return cls(
            *vocabs,
            read_merges(os.path.join(folder, MERGES_FILE)),
            config["langs"],
            **kwargs,
        )

    def save_pretrained(self, folder: str | os.PathLike) -> list[str]:
        """Write the four tokenizer files (each atomically); returns their paths."""
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        config = {
            "langs": [self.src_lang, self.tgt_lang],
            "model_max_length": self.model_max_length,
            "do_lower_case": self.do_lower_case,
            "tokenizer_class": "FSMTTokenizer",
            "moses_punct_normalization": self.moses_punct_normalization,
        }
        files = {SRC_VOCAB_FILE: self.src_vocab, TGT_VOCAB_FILE: self.tgt_vocab, CONFIG_FILE: config}
        for name, obj in files.items():
            with atomic_file(os.path.join(folder, name)) as handle:
                handle.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
        write_merges(self.bpe.merges, os.path.join(folder, MERGES_FILE))
        return [os.path.join(folder, name) for name in (*files, MERGES_FILE)]

    # --- pipeline steps ----------------------------------------------------

    def moses_tokenize(self, text: str, lang: str) -> str:
        """``MosesTokenizer(lang).tokenize(..., aggressive_dash_splits, escape)`` as one string."""
        text = _check_text(text)
        if self.do_lower_case:
            text = text.lower()
        if self.moses_punct_normalization:
            text = _moses_normalizer(lang).normalize(text)
        return _moses_tokenizer(lang).tokenize(
            text, aggressive_dash_splits=True, return_str=True, escape=True
        )

    def moses_detokenize(self, tokens: Sequence[str], lang: str) -> str:
        return _moses_detokenizer(lang).detokenize(list(tokens))

    def apply_bpe(self, moses_string: str) -> str:
        """fastBPE output (``@@`` form) for a moses-tokenized string."""
        return self.bpe.apply(_check_text(moses_string))

    def _word_ids(self, vocab: Mapping[str, int], word: str) -> tuple[int, ...]:
        # Goes through fairseq's symbol strings so that whitespace splitting and
        # special-symbol lookups match Dictionary.encode_line exactly.
        symbols = word_to_bpe_string(self.bpe.word_pieces(word)).split()
        return tuple(vocab.get(symbol_to_piece(s), self.unk_token_id) for s in symbols)

    def _ids(self, moses_string: str, word_ids) -> list[int]:
        ids: list[int] = []
        for word in moses_string.split(" "):
            if word:
                ids.extend(word_ids(word))
        ids.append(self.eos_token_id)
        return ids

    # --- source side ---------------------------------------------------------

    def encode(self, text: str, return_tensors: str | None = None):
        """``hub.encode(text)``: source ids ending with ``</s>`` (2), no ``<s>``.

        A list; with ``return_tensors="pt"``/``"np"`` a (1, length) tensor/array, as transformers'
        ``tokenizer.encode(text, return_tensors="pt")``.
        """
        ids = self._ids(self.moses_tokenize(text, self.src_lang), self._src_word_ids)
        return ids if return_tensors is None else _as_tensor([ids], return_tensors)

    def batch_encode(self, texts: Iterable[str]) -> list[list[int]]:
        return [self.encode(t) for t in _text_list(texts)]

    def __call__(self, texts, return_tensors: str | None = None, padding: bool | str | None = None
                 ) -> BatchEncoding:
        """transformers' convention: ``input_ids`` and ``attention_mask`` as lists (one list for one str,
        a list of lists for a list), or (batch, length) tensors with ``return_tensors="pt"``/``"np"``.

        Padding is on the LEFT with ``<pad>`` (1), like fairseq. ``padding=None`` (default) pads exactly
        when tensors are asked for; ``True``/``"longest"`` always pads, ``False``/``"do_not_pad"`` never.
        """
        single = isinstance(texts, str)
        rows = self.batch_encode(texts)
        if padding is None:
            padding = return_tensors is not None
        if padding not in (True, False, "longest", "do_not_pad"):
            raise ConfigError(f"padding must be True/'longest' or False/'do_not_pad'; got {padding!r} "
                              "(fsmt_port pads to the longest sentence, on the left as fairseq)")
        width = max((len(r) for r in rows), default=0)
        if padding in (True, "longest"):
            masks = left_pad([[1] * len(r) for r in rows], 0)
            rows = left_pad(rows, self.pad_token_id)
        else:
            masks = [[1] * len(r) for r in rows]
        if return_tensors is None:
            if single:
                return BatchEncoding({"input_ids": rows[0], "attention_mask": masks[0]})
            return BatchEncoding({"input_ids": rows, "attention_mask": masks})
        if any(len(r) != width for r in rows):
            raise InputError("sequences have different lengths; pass padding=True to return tensors")
        return BatchEncoding({"input_ids": _as_tensor(rows, return_tensors, width),
                              "attention_mask": _as_tensor(masks, return_tensors, width)})

    # --- target side ---------------------------------------------------------

    def encode_target(self, text: str) -> list[int]:
        """Reference text -> target ids (moses with the TARGET language), ending with ``</s>``."""
        return self._ids(self.moses_tokenize(text, self.tgt_lang), self._tgt_word_ids)

    def encode_constraint(self, text: str) -> list[int]:
        """fairseq-interactive's constraint encoding: the SOURCE-language moses tokenizer and BPE,
        looked up in the target dictionary, no ``</s>``."""
        return self._ids(self.moses_tokenize(text, self.src_lang), self._tgt_word_ids)[:-1]

    def encode_prefix(self, text: str) -> list[int]:
        """A target-side prefix (e.g. a reference's start): target ids without ``</s>``."""
        return self.encode_target(text)[:-1]

    def string(self, ids) -> str:
        """``hub.string``: ``</s>``/``<s>`` dropped, ``<unk>``/``<pad>`` printed, ``@@`` kept."""
        return self.tgt_dict.string(_as_id_list(ids))

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """``hub.decode``: string -> remove ``@@ `` -> moses detokenize (target language).

        As fairseq, ``</s>``/``<s>`` are dropped and ``<unk>``/``<pad>`` print as words; with
        ``skip_special_tokens=True`` (transformers' option, what a padded ``generate()`` row needs)
        ``<unk>`` and ``<pad>`` are dropped too. ``ids``: a list, a 1-D tensor or array.
        """
        skip = (self.eos_token_id, self.bos_token_id)
        if skip_special_tokens:
            skip += (self.pad_token_id, self.unk_token_id)
        pieces, n = self._tgt_pieces, len(self._tgt_pieces)
        words: list[str] = []
        pending: list[str] = []  # non-final pieces waiting for the end of their word
        for i in _as_id_list(ids):
            if i in skip:
                continue
            piece = pieces[i] if 0 <= i < n else SPECIAL_SYMBOLS[self.unk_token_id]
            if piece.endswith(END_OF_WORD):
                pending.append(piece[: -len(END_OF_WORD)])
            elif piece in SPECIAL_SYMBOLS:
                pending.append(piece)  # '<unk>' / '<pad>' print as words
            else:
                pending.append(piece)
                continue
            words.append("".join(pending))
            pending = []
        if pending:  # a trailing non-final piece just loses its '@@'
            words.append("".join(pending))
        # fairseq splits on any whitespace (and drops empty words) before detokenizing.
        return self.moses_detokenize(" ".join(words).split(), self.tgt_lang)

    def batch_decode(self, batch, skip_special_tokens: bool = False) -> list[str]:
        """``decode`` of each row (a list of id lists, or a 2-D tensor such as ``generate()``'s output)."""
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]


def _as_tensor(rows: list[list[int]], return_tensors: str, width: int | None = None):
    """(len(rows), width) int64 tensor ("pt") or array ("np"); ``reshape`` keeps the shape of an empty batch."""
    width = len(rows[0]) if width is None else width
    if return_tensors == "pt":
        import torch

        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), width)
    if return_tensors == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64).reshape(len(rows), width)
    raise ConfigError(f"return_tensors must be 'pt', 'np' or None; got {return_tensors!r}")


def _text_list(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Iterable):
        raise InputError(f"expected a str or a list of str, got {type(texts).__name__}")
    return list(texts)

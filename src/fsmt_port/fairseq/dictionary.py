"""fairseq ``Dictionary`` semantics (``dict.<lang>.txt``) without fairseq.

Ids must match the checkpoint's embedding rows exactly, so loading mirrors
fairseq's ``Dictionary.add_from_file`` line by line, and ``string`` mirrors
``Dictionary.string`` (what ``hub.string`` / ``hub.decode`` print).

The second half converts between the fastBPE symbol form used by fairseq
(``foo@@`` = non-final piece, ``foo`` = final piece) and the ``</w>`` form used
by transformers' FSMT vocab files (``foo`` = non-final, ``foo</w>`` = final).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from fsmt_port.errors import DictionaryFormatError, MissingFileError
from fsmt_port.tokenization.bpe import CONTINUATION, END_OF_WORD

BOS, PAD, EOS, UNK = "<s>", "<pad>", "</s>", "<unk>"
SPECIAL_SYMBOLS = (BOS, PAD, EOS, UNK)
OVERWRITE_FLAG = "#fairseq:overwrite"

_EXPECTED_LINE = "'<token> <count>' optionally followed by ' #fairseq:overwrite'"


class FairseqDictionary:
    """Symbol table with fairseq's ids: 4 specials first, then the file lines."""

    bos_index = 0
    pad_index = 1
    eos_index = 2
    unk_index = 3

    def __init__(self) -> None:
        self.symbols: list[str] = []
        self.counts: list[int] = []
        self.indices: dict[str, int] = {}
        for sym in SPECIAL_SYMBOLS:
            self.add_symbol(sym, 1)

    @classmethod
    def load(cls, path: str | os.PathLike, *, what: str = "fairseq dictionary") -> "FairseqDictionary":
        """Read a ``dict.<lang>.txt`` written by ``fairseq-preprocess``."""
        path = os.fspath(path)
        try:
            # Universal newlines + readlines(), exactly like fairseq's open().
            with open(path, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            raise MissingFileError(
                f"{what} not found: {path}. Pass the dict.<lang>.txt that ships next to the "
                "fairseq checkpoint (e.g. dict.en.txt)."
            ) from None
        except UnicodeDecodeError as err:
            raise DictionaryFormatError(
                f"{path}: {what} is not valid UTF-8 ({err.reason} at byte {err.start}); "
                "fairseq dictionaries are UTF-8 text, regenerate it with fairseq-preprocess."
            ) from None
        return cls.from_lines(lines, source=path)

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, source: str = "<lines>") -> "FairseqDictionary":
        """Parse dictionary lines (fairseq ``add_from_file`` rules); ``source`` names them in errors."""
        d = cls()
        for lineno, raw in enumerate(lines, start=1):
            word, count, overwrite = _parse_line(raw, source, lineno)
            if word in d.indices and not overwrite:
                raise DictionaryFormatError(
                    f"{source}:{lineno}: duplicate token {word!r} (already id {d.indices[word]}); "
                    f"fairseq rejects duplicates unless the line ends with ' {OVERWRITE_FLAG}'. "
                    "Remove the line or add the flag."
                )
            if overwrite:
                # fairseq appends a NEW id and points the word at it; the old slot stays.
                d._append(word, count)
            else:
                d.add_symbol(word, count)
        return d

    def add_symbol(self, word: str, count: int = 1) -> int:
        """fairseq ``add_symbol`` without overwrite: existing words only gain count."""
        idx = self.indices.get(word)
        if idx is not None:
            self.counts[idx] += count
            return idx
        return self._append(word, count)

    def _append(self, word: str, count: int) -> int:
        idx = len(self.symbols)
        self.indices[word] = idx
        self.symbols.append(word)
        self.counts.append(count)
        return idx

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, sym: str) -> bool:
        return sym in self.indices

    def __getitem__(self, idx: int) -> str:
        """Symbol for an id; ids past the end print as ``<unk>`` like fairseq."""
        idx = int(idx)
        if idx < 0:
            raise IndexError(f"token id {idx} is negative; ids index the dictionary from 0")
        return self.symbols[idx] if idx < len(self.symbols) else UNK

    def index(self, sym: str) -> int:
        """Id of ``sym``; unknown symbols map to ``<unk>`` (3)."""
        return self.indices.get(sym, self.unk_index)

    def encode_line(self, line: str) -> list[int]:
        """fairseq ``encode_line(line, add_if_not_exist=False)``: whitespace split, map, append EOS."""
        get, unk = self.indices.get, self.unk_index
        return [get(word, unk) for word in line.split()] + [self.eos_index]

    def string(self, ids: Iterable[int]) -> str:
        """fairseq ``Dictionary.string``: EOS and BOS dropped everywhere, ``@@`` kept."""
        skip = (self.eos_index, self.bos_index)
        return " ".join(self[i] for i in map(int, ids) if i not in skip)


def _parse_line(raw: str, source: str, lineno: int) -> tuple[str, int, bool]:
    line = raw.rstrip()
    try:
        word, field = line.rsplit(" ", 1)
        overwrite = field == OVERWRITE_FLAG
        if overwrite:
            word, field = word.rsplit(" ", 1)
        return word, int(field), overwrite
    except ValueError:
        raise DictionaryFormatError(
            f"{source}:{lineno}: malformed dictionary line {line!r}; expected {_EXPECTED_LINE}, "
            "as written by fairseq-preprocess. Fix the line or pass the right file."
        ) from None


# --- fastBPE symbols <-> transformers FSMT '</w>' vocabulary -----------------


def symbol_to_piece(symbol: str) -> str:
    """``foo@@`` -> ``foo``; ``foo`` -> ``foo</w>``; specials keep their names."""
    if symbol in SPECIAL_SYMBOLS:
        return symbol
    if symbol.endswith(CONTINUATION):
        return symbol[: -len(CONTINUATION)]
    return symbol + END_OF_WORD


def piece_to_symbol(piece: str) -> str:
    """Inverse of :func:`symbol_to_piece` (``</w>`` form back to fairseq's form)."""
    if piece in SPECIAL_SYMBOLS:
        return piece
    if piece.endswith(END_OF_WORD):
        return piece[: -len(END_OF_WORD)]
    return piece + CONTINUATION


def to_bpe_vocab(symbols: Iterable[str]) -> dict[str, int]:
    """``</w>``-form token -> id, ids exactly as the dictionary assigns them.

    Raises instead of dropping entries: a collision would silently shift ids
    between the vocab file and the checkpoint's embedding rows.
    """
    vocab: dict[str, int] = {}
    for idx, symbol in enumerate(symbols):
        piece = symbol_to_piece(symbol)
        if piece == "":
            raise DictionaryFormatError(
                f"dictionary symbol {symbol!r} (id {idx}) is a bare '@@' and has no '</w>' form; "
                "it cannot be written to an FSMT vocab file."
            )
        if piece in vocab:
            raise DictionaryFormatError(
                f"dictionary symbols id {vocab[piece]} ({piece_to_symbol(piece)!r}) and id {idx} "
                f"({symbol!r}) both become {piece!r} in '</w>' form; an FSMT vocab cannot hold both. "
                "Remove the duplicate from the dictionary."
            )
        vocab[piece] = idx
    return vocab


def from_bpe_vocab(vocab: Mapping[str, int], *, source: str = "vocab") -> list[str]:
    """Id-ordered fairseq symbols from a ``</w>`` vocab (the inverse of :func:`to_bpe_vocab`)."""
    symbols: list[str | None] = [None] * len(vocab)
    for piece, idx in vocab.items():
        if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(vocab) or symbols[idx] is not None:
            raise DictionaryFormatError(
                f"{source}: token {piece!r} has id {idx!r}; ids must be the distinct integers "
                f"0..{len(vocab) - 1}. Re-run the converter to rewrite the vocab file."
            )
        symbols[idx] = piece_to_symbol(piece)
    for idx, special in enumerate(SPECIAL_SYMBOLS):
        if len(symbols) <= idx or symbols[idx] != special:
            raise DictionaryFormatError(
                f"{source}: id {idx} must be {special!r} (fairseq's special symbols come first); "
                "re-run the converter to rewrite the vocab file."
            )
    return symbols  # type: ignore[return-value]


def dictionary_from_bpe_vocab(vocab: Mapping[str, int], *, source: str = "vocab") -> FairseqDictionary:
    """A :class:`FairseqDictionary` equivalent to the dict file the vocab was made from."""
    d = FairseqDictionary()
    for symbol in from_bpe_vocab(vocab, source=source)[len(SPECIAL_SYMBOLS):]:
        d._append(symbol, 0)
    return d

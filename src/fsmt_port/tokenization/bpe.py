"""fastBPE-exact BPE (``fastBPE.fastBPE(codes).apply``, no vocabulary file).

fairseq's hub runs fastBPE on the moses output; any deviation changes ids, so
this module reproduces fastBPE's rules, including its odd corners:

* words are split on the ASCII space only (empty words are skipped);
* a word is split into code points and the last one gets ``</w>``; fastBPE's
  char loop stops at a NUL byte and the last char absorbs the rest;
* repeatedly, the lowest-rank adjacent pair is merged at all its
  non-overlapping occurrences, left to right.

Merges are cached per word, so a corpus pays the merge loop once per distinct
word. ``benchmarks/TOKENIZER.md`` explains why this is pure Python rather than
HF ``tokenizers`` (same output, no end-to-end gain, unknown characters need a
fallback anyway).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence

from fsmt_port.errors import DictionaryFormatError, MissingFileError
from fsmt_port.files import atomic_file

END_OF_WORD = "</w>"  # transformers' vocab form: "foo</w>" ends a word
CONTINUATION = "@@"  # fastBPE/fairseq form: "foo@@" continues one
DEFAULT_CACHE_SIZE = 1 << 17  # words whose pieces are kept (per FastBPE, and per tokenizer vocabulary)

Merge = tuple[str, str]


def read_bpecodes(path: str | os.PathLike) -> list[Merge]:
    """Merges of a fastBPE ``bpecodes`` file (``A B COUNT`` per line); rank = line order."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", newline="\n") as handle:
            lines = handle.read().split("\n")
    except FileNotFoundError:
        raise MissingFileError(
            f"BPE codes file not found: {path}. Pass the 'bpecodes' file that ships next to the "
            "fairseq checkpoint."
        ) from None
    except UnicodeDecodeError as err:
        raise DictionaryFormatError(
            f"{path}: BPE codes are not valid UTF-8 ({err.reason} at byte {err.start}); "
            "pass the fastBPE 'bpecodes' file."
        ) from None
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    merges: list[Merge] = []
    seen: dict[Merge, int] = {}
    for lineno, line in enumerate(lines, start=1):
        merge = _parse_code_line(line, path, lineno)
        if merge in seen:
            raise DictionaryFormatError(
                f"{path}:{lineno}: merge {' '.join(merge)!r} already appeared on line "
                f"{seen[merge]}; fastBPE codes list each pair once. Pass an unmodified bpecodes file."
            )
        seen[merge] = lineno
        merges.append(merge)
    return merges


def _parse_code_line(line: str, path: str, lineno: int) -> Merge:
    fields = [f for f in line.split(" ") if f]  # fastBPE's split() skips empty fields
    hint = "expected 'LEFT RIGHT COUNT' (fastBPE learnbpe output)"
    if len(fields) == 2:
        hint += "; a 2-field line looks like a transformers merges.txt, not fastBPE bpecodes"
    if len(fields) != 3 or not fields[2].lstrip("-").isdigit():
        raise DictionaryFormatError(f"{path}:{lineno}: malformed BPE codes line {line!r}; {hint}.")
    return fields[0], fields[1]


def write_merges(merges: Iterable[Merge], path: str | os.PathLike) -> None:
    """Write transformers-FSMT ``merges.txt`` (``A B`` per line, ends with a newline), atomically."""
    with atomic_file(path) as handle:
        handle.writelines(f"{a} {b}\n" for a, b in merges)


def read_merges(path: str | os.PathLike) -> list[Merge]:
    """Read a ``merges.txt`` the way transformers' FSMT tokenizer does."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8", newline="\n") as handle:
            lines = handle.read().split("\n")[:-1]
    except FileNotFoundError:
        raise MissingFileError(
            f"merges file not found: {path}. Run the fsmt-convert converter to create the model folder."
        ) from None
    except UnicodeDecodeError as err:
        raise DictionaryFormatError(f"{path}: merges are not valid UTF-8 ({err.reason} at byte {err.start}); "
                                    "re-run the converter to rewrite merges.txt.") from None
    merges = []
    for lineno, line in enumerate(lines, start=1):
        fields = line.split(" ")
        if len(fields) != 2 or not all(fields):
            raise DictionaryFormatError(
                f"{path}:{lineno}: malformed merges line {line!r}; expected 'LEFT RIGHT'. "
                "Re-run the converter to rewrite merges.txt."
            )
        merges.append((fields[0], fields[1]))
    return merges


def split_word(word: str) -> list[str]:
    """fastBPE's initial symbols: code points, ``</w>`` on the last, NUL quirk included."""
    head, nul, tail = word.partition("\0")
    chars = list(head)
    if nul:
        # fastBPE's char loop stops at NUL; the last char keeps the rest of the bytes.
        if chars:
            chars[-1] += nul + tail
        else:
            chars = [nul + tail]
    chars[-1] += END_OF_WORD
    return chars


class FastBPE:
    """fastBPE's ``apply`` for one codes file, with a bounded per-word cache."""

    def __init__(self, merges: Sequence[Merge], *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.merges = list(merges)
        self.ranks: dict[Merge, int] = {}
        for rank, pair in enumerate(self.merges):
            self.ranks.setdefault(pair, rank)
        self.word_pieces = functools.lru_cache(maxsize=cache_size)(self._merge_word)

    @classmethod
    def from_codes_file(cls, path: str | os.PathLike, **kwargs) -> "FastBPE":
        return cls(read_bpecodes(path), **kwargs)

    def _merge_word(self, word: str) -> tuple[str, ...]:
        """Pieces of one word in ``</w>`` form (the final piece ends with ``</w>``)."""
        symbols = split_word(word)
        ranks = self.ranks
        while len(symbols) > 1:
            best = None
            best_rank = -1
            for pair in zip(symbols, symbols[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best is None or rank < best_rank):
                    best, best_rank = pair, rank
            if best is None:
                break
            first, second = best
            merged, out, i, n = first + second, [], 0, len(symbols)
            while i < n:
                if i + 1 < n and symbols[i] == first and symbols[i + 1] == second:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            symbols = out
        return tuple(symbols)

    def pieces(self, text: str) -> list[str]:
        """All pieces of a moses-tokenized string, ``</w>`` form (for vocab lookup)."""
        out: list[str] = []
        for word in text.split(" "):
            if word:
                out.extend(self.word_pieces(word))
        return out

    def apply(self, text: str) -> str:
        """Exactly ``fastBPE.fastBPE(codes).apply([text])[0]`` (``@@`` form)."""
        return " ".join(word_to_bpe_string(self.word_pieces(w)) for w in text.split(" ") if w)


def word_to_bpe_string(pieces: Sequence[str]) -> str:
    """One word's pieces -> ``a@@ b``: fastBPE appends ``@@ `` to each and cuts ``</w>@@ ``."""
    return (CONTINUATION + " ").join(pieces)[: -len(END_OF_WORD)]

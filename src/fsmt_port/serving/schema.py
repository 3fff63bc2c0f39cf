"""The JSON the server accepts and returns (pydantic), with the limits that do not depend on the model.

Generation arguments keep ``fsmt-translate``'s names (``num_beams``, ``length_penalty``, ...);
fairseq's spellings (``beam``, ``lenpen``, ``unkpen``) are accepted too. Anything else is refused
(``extra="forbid"``), so a typo is a 422 naming the field rather than a silently ignored option.
Types are strict: ``"5"`` is not a beam size. The bounds here only keep the arithmetic safe
(``len ** length_penalty`` must not overflow a float); the server's own caps (``--max-beams``,
``--max-sentences``, ...) are checked in ``serving/limits.py`` because they are command-line settings.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

#: The generation arguments a client may set; everything else about decoding is the server's.
GENERATION_FIELDS = ("num_beams", "length_penalty", "early_stopping", "no_repeat_ngram_size",
                     "max_len_a", "max_len_b", "min_len", "unk_penalty")

Sentence = Annotated[str, Field(description="one sentence; an empty string still gets a translation")]


def _check_unicode(text: str, where: str) -> None:
    """JSON may carry lone surrogates (``"\\ud800"``); they are not text and cannot be encoded back."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{where} contains a lone UTF-16 surrogate at character {err.start}; "
                         "send valid Unicode") from None


class TranslateRequest(BaseModel):
    """``{"text": "..."}`` or ``{"text": ["...", ...]}`` plus optional generation arguments."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True,
                              json_schema_extra={"examples": [{"text": "Machine learning is great!"},
                                                              {"text": ["Hello!", "Two dogs."], "num_beams": 5,
                                                               "nbest": 2, "return_tokens": True}]})

    text: str | list[Sentence] = Field(description="a sentence, or a list of sentences translated in order")
    num_beams: int | None = Field(None, ge=1, validation_alias=AliasChoices("num_beams", "beam"),
                                  description="beam size (fairseq: beam); at most the server's --max-beams")
    length_penalty: float | None = Field(None, ge=-100, le=100, allow_inf_nan=False,
                                         validation_alias=AliasChoices("length_penalty", "lenpen"),
                                         description="score = sum of log-probs / length ** length_penalty")
    early_stopping: bool | None = Field(None, description="true (fairseq): stop at num_beams finished hypotheses")
    no_repeat_ngram_size: int | None = Field(None, ge=0, le=1024, description="ban repeated n-grams of this size")
    max_len_a: float | None = Field(None, ge=0, le=1024, allow_inf_nan=False,
                                    description="max output length = a * source length + b")
    max_len_b: int | None = Field(None, ge=0, le=1_000_000,
                                  description="max output length = a * source length + b; "
                                              "at most the server's --max-output-tokens")
    min_len: int | None = Field(None, ge=0, le=1_000_000, description="</s> is forbidden before this many tokens")
    unk_penalty: float | None = Field(None, ge=-1000, le=1000, allow_inf_nan=False,
                                      validation_alias=AliasChoices("unk_penalty", "unkpen"),
                                      description="subtracted from log p(<unk>)")
    nbest: int = Field(1, ge=1, description="hypotheses returned per sentence (at most num_beams)")
    return_tokens: bool = Field(False, description="also return target token ids and per-token scores")

    @field_validator("text")
    @classmethod
    def _valid_unicode(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            _check_unicode(value, "text")
        else:
            for index, line in enumerate(value):
                _check_unicode(line, f"text[{index}]")
        return value

    def sentences(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)

    def generation_kwargs(self) -> dict:
        return {name: getattr(self, name) for name in GENERATION_FIELDS if getattr(self, name) is not None}


class Hypothesis(BaseModel):
    text: str
    score: float | None = Field(description="fairseq's normalized score (null only if not finite)")
    tokens: list[int] | None = Field(None, description="target ids ending with </s> (with return_tokens)")
    positional_scores: list[float | None] | None = Field(None, description="per-token log-probs (with return_tokens)")


class TranslateResponse(BaseModel):
    translations: list[str] = Field(description="the best translation of each sentence, in order")
    hypotheses: list[list[Hypothesis]] = Field(description="the nbest hypotheses of each sentence, best first")


class ErrorResponse(BaseModel):
    error: str = Field(description="one line: what was wrong, where, and what to do")
    kind: str = Field(description="a stable name for the error, as in the fsmt_serve_errors_total metric")
    limit: str | None = Field(None, description="the server option whose limit was hit, if any")

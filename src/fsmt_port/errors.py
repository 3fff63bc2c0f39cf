"""Exceptions for everything a user can cause: one class per kind of fault.

Each message is one line that says what was expected, what arrived (file, key,
line) and what to do. CLIs print ``str(err)`` and exit non-zero; no traceback.
The README's "Errors" section lists the classes for users.
"""


class FSMTPortError(Exception):
    """Base class: a problem with the user's input, not a bug in fsmt_port."""


class MissingFileError(FSMTPortError, FileNotFoundError):
    """A file or folder that must exist is not there: a model folder or one of its files, a fairseq
    checkpoint, dictionary or bpecodes, an input or reference text."""


class CheckpointError(FSMTPortError):
    """Weights cannot be read (corrupt, truncated, not a transformer) or do not fit the config."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint's pickle asks for code outside the safe allow-list (``--trust-checkpoint`` to allow)."""


class DictionaryFormatError(FSMTPortError, ValueError):
    """A ``dict.*.txt``, vocab, ``bpecodes`` or ``merges.txt`` entry does not have the expected format."""


class ConfigError(FSMTPortError, ValueError):
    """A config field (config.json, generation_config.json, tokenizer_config.json) or a command-line
    option has an unusable type or value."""


class InputError(FSMTPortError, ValueError):
    """Text or files given for translation/evaluation cannot be used as they are."""


class OutputExistsError(FSMTPortError, FileExistsError):
    """An output already exists and ``--force`` was not given."""


class HubError(FSMTPortError, OSError):
    """A hub repo id cannot be fetched: missing or gated repo, unknown revision, no network, not cached offline."""


class RequestError(InputError):
    """A ``fsmt-serve`` request that cannot be served as sent; carries the HTTP answer to give.

    ``kind`` names the error in responses and in the ``fsmt_serve_errors_total`` metric; ``limit``
    names the server option that was exceeded, if any.
    """

    def __init__(self, message: str, status: int = 422, kind: str = "invalid_request", limit: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.limit, self.retry_after = status, kind, limit, retry_after


class OutputError(FSMTPortError):
    """An output cannot be written (no space left, no permission, a folder in the way)."""
class OutOfMemoryError(FSMTPortError, MemoryError):
    """Even a single sentence does not fit in memory on the chosen device and dtype."""

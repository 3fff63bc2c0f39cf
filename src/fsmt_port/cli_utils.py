"""What every command line does on error: one clear line, a non-zero exit, no traceback."""

from __future__ import annotations

import sys
from typing import Callable

from .errors import FSMTPortError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(job: Callable[[], None]) -> int:
    try:
        job()
    except FSMTPortError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted; nothing partial was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    return 0

"""fsmt-serve: a translation service with dynamic batching (FastAPI + uvicorn).

Example::

    fsmt-serve wmt19-en-de --host 127.0.0.1 --port 8000 --num-beams 5
    curl -s localhost:8000/translate -H 'Content-Type: application/json' -d '{"text": "Hello world!"}'
    fsmt-serve m1 m2 m3 m4 --port 8000                # several folders = an ensemble
    fsmt-serve facebook/wmt19-en-de --port 8000       # a hub repo id (fetched into the hub cache)

Open http://127.0.0.1:8000/ for a page to try it, /docs for the API. SIGTERM (or Ctrl-C) stops
accepting connections, finishes the requests in flight, and exits (0 for SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys

import torch

from fsmt_port.cli import add_device_options, add_generation_options, add_hub_options, add_model_arguments
from fsmt_port.cli import generation_kwargs, hub_kwargs, run_cli
from fsmt_port.errors import ConfigError
from fsmt_port.generation import resolve_generation_config
from fsmt_port.serving.batcher import BatchingSettings
from fsmt_port.serving.service import ServeLimits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsmt-serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    server.add_argument("--port", type=int, default=8000, help="TCP port; 0 = any free port (default: %(default)s)")
    server.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                        help="uvicorn's log level (default: %(default)s)")
    server.add_argument("--access-log", action="store_true", help="log every request (default: off)")

    batching = parser.add_argument_group("dynamic batching")
    defaults = BatchingSettings()
    batching.add_argument("--max-batch-sentences", "--batch-size", type=int, default=defaults.max_batch_sentences,
                          help="sentences per decoded batch; 1 turns batching off (default: %(default)s)")
    batching.add_argument("--max-batch-tokens", "--max-tokens", type=int, default=defaults.max_batch_tokens,
                          help="padded source tokens per batch (default: %(default)s)")
    batching.add_argument("--max-wait-ms", type=float, default=defaults.max_wait * 1000,
                          help="how long the oldest queued sentence waits for others to share its batch "
                               "(default: %(default)s)")
    batching.add_argument("--max-queue", type=int, default=defaults.max_queue,
                          help="queued sentences; more get 503 with Retry-After (default: %(default)s)")

    limits = parser.add_argument_group("per-request limits")
    caps = ServeLimits()
    limits.add_argument("--max-sentences", type=int, default=caps.max_sentences,
                        help="sentences per request; more get 413 (default: %(default)s)")
    limits.add_argument("--max-input-tokens", type=int, default=None,
                        help="source tokens per sentence; longer get 413 (default: the model's max_source_positions)")
    limits.add_argument("--truncate", action="store_true", help="cut longer sentences to --max-input-tokens instead")
    limits.add_argument("--max-beams", type=int, default=caps.max_beams,
                        help="largest num_beams a request may ask for (default: %(default)s)")
    limits.add_argument("--max-output-tokens", type=int, default=None,
                        help="largest max_len_a * source length + max_len_b a request may ask for "
                             "(default: the model's max_target_positions - 1)")
    limits.add_argument("--max-body-bytes", type=int, default=caps.max_body_bytes,
                        help="request body size (default: %(default)s)")

    add_generation_options(parser)
    add_device_options(parser.add_argument_group("runtime"))
    add_hub_options(parser)
    return parser


def settings_from_args(args: argparse.Namespace) -> tuple[ServeLimits, BatchingSettings]:
    batching = BatchingSettings(max_batch_sentences=args.max_batch_sentences, max_batch_tokens=args.max_batch_tokens,
                                max_wait=args.max_wait_ms / 1000, max_queue=args.max_queue)
    for name in ("max_batch_sentences", "max_batch_tokens", "max_queue"):
        if getattr(batching, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(batching, name)}")
    if not 0 <= batching.max_wait <= 60:
        raise ConfigError(f"--max-wait-ms must be between 0 and 60000, got {args.max_wait_ms}")
    limits = ServeLimits(max_sentences=args.max_sentences, max_input_tokens=args.max_input_tokens,
                         max_beams=args.max_beams, max_output_tokens=args.max_output_tokens,
                         max_body_bytes=args.max_body_bytes, truncate=args.truncate)
    return limits, batching


def listen(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn, so that a taken port is one clear line (and port 0 works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror or err}); "
                          "choose another --port or --host") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def job() -> None:
        import uvicorn

        from fsmt_port.hub import resolve_model_dir
        from fsmt_port.serving.app import create_app
        from fsmt_port.serving.service import TranslationService
        from fsmt_port.translation.translator import Translator

        if args.threads:
            torch.set_num_threads(args.threads)
        limits, batching = settings_from_args(args)
        sock = listen(args.host, args.port)  # before loading: a taken port fails at once
        with contextlib.closing(sock):
            folders = [resolve_model_dir(d, **hub_kwargs(args)) for d in args.model_dirs]  # hub ids: fetched once
            translator = Translator.from_pretrained(folders, device=args.device, dtype=args.dtype,
                                                    quantize=args.quantize)
            translator.generation_config = resolve_generation_config(translator.generation_config,
                                                                     **generation_kwargs(args))
            service = TranslationService(translator, limits, batching,
                                         model_sources=list(zip(args.model_dirs, map(str, folders))))
            config = uvicorn.Config(create_app(service), log_level=args.log_level, access_log=args.access_log,
                                    lifespan="on")
            server = uvicorn.Server(config)
            host, port = sock.getsockname()[:2]
            # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler that was
            # installed before it started: make that one a no-op so that a graceful stop exits 0.
            previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
            print(f"fsmt-serve: listening on http://{_url_host(host)}:{port}", file=sys.stderr, flush=True)
            try:
                server.run(sockets=[sock])
            finally:
                signal.signal(signal.SIGTERM, previous)
        if not server.started:
            raise ConfigError("the server did not start; see the log above")
        print("fsmt-serve: stopped", file=sys.stderr, flush=True)

    return run_cli(job, tune_memory=True)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


if __name__ == "__main__":
    sys.exit(main())

"""Command line: argument parsing and printing only; the work happens in the library.

Every SegliteError becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import OptionError, SegliteError
from .tables import format_table  # noqa: F401  (commands and benchmarks import it from here)


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--scales takes numbers separated by commas, got {text!r}"
        ) from None


def int_at_least(minimum: int):
    """An argparse type for integers >= ``minimum``, with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return v

    return parse


positive_int = int_at_least(1)


def add_model_options(p: argparse.ArgumentParser, *, accurate: bool = True) -> None:
    """Options every command that runs a Segmenter shares."""
    p.add_argument(
        "--model", "-m", default=None, help="zoo name or model file (default: deeplabv3)"
    )
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads")
    if accurate:
        p.add_argument(
            "--accurate",
            action="store_true",
            help="tiled inference at 1.5x and 2x the model size, each also mirrored (slower, sharper)",
        )
        p.add_argument(
            "--scales", type=_scales, default=None, help="e.g. 1.5,2 (long side / model size)"
        )
        p.add_argument("--flip", action="store_true", help="also run mirrored and fuse")
    p.add_argument("--max-pixels", type=positive_int, default=None, help="refuse larger images")


def segmenter_kwargs(args: argparse.Namespace) -> dict:
    from .image import DEFAULT_MAX_PIXELS

    scales, flip = getattr(args, "scales", None), getattr(args, "flip", False)
    accurate = getattr(args, "accurate", False)
    if accurate and scales is not None:
        raise OptionError("--accurate and --scales both set the scales: use one")
    return {
        "num_threads": args.threads,
        "scales": scales or (1.0,),
        "flip": flip and not accurate,  # the preset mirrors anyway
        "accurate": accurate,  # the model's own preset (Segmenter.accurate_scales)
        "max_pixels": args.max_pixels or DEFAULT_MAX_PIXELS,
    }


# Each command lives in seglite.commands.<name> with add_parser(subparsers) and run(args).
COMMANDS = (
    "segment", "models", "bench", "eval", "train", "export", "serve", "check", "inspect", "compare",
    "import_model", "ensemble",
)  # fmt: skip


# The name typed -> the module under seglite.commands (``import`` is a keyword).
_MODULES = {("import" if m == "import_model" else m): m for m in COMMANDS}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI, or with ``only`` (a command's name) just its parser under the top level: a
    run of one command imports one command module, not all twelve (~30 ms of start-up)."""
    import importlib

    parser = argparse.ArgumentParser(prog="seglite", description="DeepLab semantic segmentation.")
    parser.add_argument("--version", action="version", version=f"seglite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (_MODULES[only],):
        try:
            module = importlib.import_module(f"seglite.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"seglite.commands.{name}":
                continue  # command not part of this build
            raise
        p = module.add_parser(sub)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=argv[0] if argv and argv[0] in _MODULES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SegliteError as exc:
        print(f"seglite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seglite: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

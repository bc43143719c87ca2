"""seglite models: the zoo table, and PyTorch architecture descriptions."""

from __future__ import annotations

import argparse
import json

from ..cli import format_table


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--describe",
        metavar="ARCH",
        nargs="?",
        const="all",
        default=None,
        help="describe PyTorch architectures (params, multiply-adds); needs seglite[torch]",
    )
    return p


def run(args: argparse.Namespace) -> int:
    if args.describe:
        from ..models.describe import describe_table

        print(describe_table(args.describe))
        return 0
    from ..zoo import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows))
    return 0

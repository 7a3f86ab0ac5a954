"""``python -m sandbox``: serve the sandbox world, or write its ground truth.

python -m sandbox serve --seed 7 --deals 3000 --config-dir .data/sandbox/config
python -m sandbox truth --seed 7 --deals 3000 --out .data/sandbox/truth
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sandbox.serve import serve
from sandbox.world.generate import generate_stream
from sandbox.world.truth import write_truth


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, found {text}")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m sandbox", description="The synthetic sales world and its APIs."
    )
    commands = root.add_subparsers(dest="command", required=True)

    s = commands.add_parser("serve", help="generate the world and serve amoCRM, Bitrix24 and 1C stand-ins")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--deals", type=_positive, default=3000)
    s.add_argument("--config-dir", type=Path, required=True, help="where sources/funnel/alerts.yaml go")
    s.add_argument(
        "--faults", help='e.g. "error_rate=0.02,burst_every=40" or "amo_retail:error_rate=0.1;erp:..."'
    )
    s.add_argument("--truth-dir", type=Path, help="default: <config dir>/../truth")
    s.add_argument(
        "--base-port", type=int, help="amoCRM on it, Bitrix24 on +1, 1C on +2 (default: free ports)"
    )
    s.add_argument(
        "--env-file", type=Path, help="where the credentials go (default: <config dir>/sandbox.env)"
    )
    s.add_argument("--smtp-port", type=int, help="the loopback SMTP port alerts.yaml names (default 18025)")

    t = commands.add_parser("truth", help="write only the ground truth")
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--deals", type=_positive, default=3000)
    t.add_argument("--out", type=Path, required=True)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(
                args.seed,
                args.deals,
                args.config_dir,
                faults=args.faults,
                truth_dir=args.truth_dir,
                base_port=args.base_port,
                env_file=args.env_file,
                smtp_port=args.smtp_port,
            )
        started = time.perf_counter()
        world, deals = generate_stream(args.seed, args.deals)
        out = write_truth(world, args.out, deals=deals)
        print(f"truth of seed {args.seed}, {args.deals} deals: {out} ({time.perf_counter() - started:.1f} s)")
        return 0
    except (ValueError, OSError, KeyError) as exc:
        print(f"python -m sandbox {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

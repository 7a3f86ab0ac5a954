"""``python -m sandbox.files <folder> [--seed N] [--deals N]``: write a sample export of the
hand-built file world (deals in cp1251 with ``;`` and a Russian header, and their stage
history) and print the sources.yaml entry that reads it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from sandbox.files.fixtures import SOURCE, build_world
from sandbox.files.render import connection_settings, write_exports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.files", description=__doc__)
    parser.add_argument("folder")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--deals", type=int, default=60)
    args = parser.parse_args(argv)
    world = build_world(args.seed, args.deals)
    paths = write_exports(world, SOURCE, args.folder)
    for kind, path in paths.items():
        print(f"{kind}: {path}", file=sys.stderr)
    entry = {"name": SOURCE, **connection_settings(Path(args.folder).resolve())}
    print(yaml.safe_dump({"sources": [entry]}, allow_unicode=True, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The `anysma` command: list and run the experiments."""

import argparse
import os
import sys

# Keep TensorFlow's start-up chatter (when it is installed) off the terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _list(_):
    from anysma import experiments

    for name in sorted(experiments.EXPERIMENTS):
        module = experiments.get(name)
        print(f"{name:<24}{module.DATASET:<36}{module.EXPECTED}")
    return 0


def _run(args, extra):
    from anysma import experiments

    module = experiments.get(args.name)
    module.main(extra, prog=f"anysma run {args.name}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="anysma", description="Prototype-based learning and capsule networks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments")
    run = commands.add_parser(
        "run", help="run an experiment; flags after the name go to it"
    )
    run.add_argument("name")
    args, extra = parser.parse_known_args(argv)
    if args.command == "list" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "list":
            return _list(args)
        return _run(args, extra)
    except ValueError as error:
        print(f"anysma: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

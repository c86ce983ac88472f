"""The `anysma` command: list, run, test and plot the experiments; find datasets.

```
anysma list                          the experiments, their data and expected results
anysma run NAME [flags]              train and evaluate (flags: anysma run NAME --help)
anysma test NAME -w WEIGHTS [flags]  evaluate given weights, no plots
anysma plot NAME -w WEIGHTS [flags]  evaluate given weights and write the plots
anysma datasets [--data_dir DIR]     which datasets are present, and where
```

Exit codes: 0 on success, 1 when data or weights are missing or training
diverged, 2 for bad names, flags or damaged files.
"""

import argparse
import sys


def _list(args, extra):
    from anysma import experiments

    print(f"{'experiment':<24}{'dataset':<32}expected result")
    for name in sorted(experiments.EXPERIMENTS):
        module = experiments.get(name)
        print(f"{name:<24}{module.DATASET:<32}{module.EXPECTED}")
    return 0


def _run(args, extra):
    from anysma import experiments

    if args.name is None:
        if {"-h", "--help"} & set(extra):
            args.subparser.print_help()
            return 0
        args.subparser.error("the experiment name is required (see `anysma list`)")
    module = experiments.get(args.name)
    argv = list(extra)
    if args.command in ("test", "plot"):
        argv = ["--testing", "--weights", args.weights] + argv
        if args.command == "test":
            argv.append("--no_plots")
    module.main(argv, prog=f"anysma {args.command} {args.name}")
    return 0


def _datasets(args, extra):
    from anysma import datasets

    # One row per dataset; a damaged one shows the error (path, problem, and
    # how to get a good copy) instead of its location.
    shown = {"present": "yes", "missing": "no", "damaged": "damaged"}
    print(f"{'dataset':<16}{'present':<9}location / source")
    for entry in datasets.status(data_dir=args.data_dir):
        if entry["state"] == "present":
            where = entry["location"]
        elif entry["state"] == "damaged":
            where = entry["problem"]
        else:
            where = f"missing; {entry['source']}"
        print(f"{entry['name']:<16}{shown[entry['state']]:<9}{where}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="anysma",
        description="Prototype-based learning and capsule networks: the "
        "experiments of the anysma paper.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments").set_defaults(handler=_list)
    for command, text in (
        ("run", "run an experiment; flags after the name go to it"),
        ("test", "evaluate given weights"),
        ("plot", "evaluate given weights and write the plots"),
    ):
        # `-h` after the name shows the experiment's own flags.
        sub = commands.add_parser(command, help=text, add_help=False)
        sub.add_argument("name", nargs="?", help="experiment name (see `anysma list`)")
        if command != "run":
            sub.add_argument(
                "-w", "--weights", required=True, help="weights file or registry name"
            )
        sub.set_defaults(handler=_run, subparser=sub)
    found = commands.add_parser("datasets", help="which datasets are present, where")
    found.add_argument("--data_dir", default=None, help="also look in this folder")
    found.set_defaults(handler=_datasets)
    return parser


def main(argv=None):
    """Run the command line `argv` (default: `sys.argv[1:]`); return the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.handler is not _run and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.handler(args, extra)
    except (FileNotFoundError, FloatingPointError) as error:
        # Missing datasets or weights (the message says where to put what),
        # or a diverged run (the message says what was kept).
        print(f"anysma: error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"anysma: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

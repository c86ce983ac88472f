"""Run anysma's benchmarks and write RESULTS.md and results.json.

One command runs them all:

```bash
python benchmarks/peers/setup_peers.py   # once: the peers' pinned venvs
python benchmarks/run.py                 # full run, with peers
python benchmarks/run.py --quick         # CI: small sizes, anysma only
python benchmarks/run.py --only distance_kernels --backends jax
```

Benchmarks (`--only`): `lvq_training` (GLVQ/GMLVQ on MNIST and Tecator vs
ProtoTorch, sklearn-lvq and sklvq), `distance_kernels` (GFLOP/s of every
distance vs a plain matmul), `capsules` (CapsNet and the LVQ-capsule
network vs broadcast baselines: speed and memory), `sklearn` (the
`anysma.sklearn` estimators vs the peers: fit time and CV accuracy).

Every measurement runs in a fresh subprocess: anysma with the project's
Python and `KERAS_BACKEND` set, each peer with its own environment's
Python. The full run writes `benchmarks/RESULTS.md` and
`benchmarks/results.json`; `--quick` and partial runs (`--only`) write to a
temporary folder unless `--output` names one. The exit code is 1 only when
an anysma measurement raised an error; slow results never fail the run.
"""

import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import signal
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _benchmarks  # noqa: E402
import _jobs  # noqa: E402
import _report  # noqa: E402
import capsule_learning  # noqa: E402

ALL_BACKENDS = ("jax", "torch", "tensorflow")
DESCRIPTIONS = {
    "lvq_training": (
        "GLVQ and GMLVQ training with 1 prototype per class. samples/s = passes "
        "x training samples / fit time (a pass is an epoch, or one full-batch "
        "gradient evaluation for sklearn-lvq's L-BFGS-B); 'steady' leaves out "
        "the first epoch (tracing/compilation). The test accuracy is evaluated "
        "every few epochs outside the timed fit; the time to the target accuracy "
        "is the training time until the first evaluation at or above it "
        "(sklearn-lvq: its fit time, if the final model reaches it)."
    ),
    "distance_kernels": (
        "Forward pass of each `anysma.ops` distance at realistic sizes, against "
        "a plain `keras.ops.matmul` of the same input rows and the same nominal "
        "floating-point work on the same backend: the machine's ceiling for a "
        "kernel of that shape (see benchmarks/distance_kernels.py for the flop "
        "counts)."
    ),
    "capsules": (
        "`anysma.models.CapsNet` (Sabour et al.) and "
        "`anysma.models.LVQCapsuleNetwork` (Saralajew et al.) against the same "
        "models written with plain broadcast products "
        "(benchmarks/_broadcast_models.py), on random data."
    ),
    "sklearn": (
        "The `anysma.sklearn` estimators side by side with sklearn-lvq, sklvq "
        "and ProtoTorch, each peer in its own pinned environment "
        "(`python benchmarks/compare_sklearn.py` prints this table alone)."
    ),
}


def _installed_backends():
    modules = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}
    return [name for name in ALL_BACKENDS if importlib.util.find_spec(modules[name])]


def _split(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, one run, no peers, one process per worker and "
        "backend (CI); writes to a temporary folder unless --output is given",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(_benchmarks.BENCHMARKS),
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(_benchmarks.BENCHMARKS)})",
    )
    parser.add_argument(
        "--backends",
        type=_split,
        default=None,
        help="comma-separated Keras backends (default: every installed one of "
        "jax, torch, tensorflow)",
    )
    parser.add_argument(
        "--capsule-backends",
        type=_split,
        default=None,
        help="backends of the capsule memory measurements (default: torch if "
        "measured, else the first of --backends; several minutes each)",
    )
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the peer libraries (default: on, off with --quick)",
    )
    parser.add_argument(
        "--setup-peers",
        action="store_true",
        help="create missing peer environments first (several GB of downloads)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs per measurement, reported as median [min-max] (default 3, "
        "1 with --quick; the slowest peer fits run once)",
    )
    parser.add_argument(
        "--memory-cap-gib",
        type=float,
        default=8.0,
        help="stop a measurement whose process passes this resident memory (default 8)",
    )
    parser.add_argument(
        "--from-json",
        type=pathlib.Path,
        default=None,
        help="re-render RESULTS.md from a results.json of an earlier run "
        "(no measurement; writes next to that file unless --output is given)",
    )
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=None,
        help="folder for RESULTS.md and results.json (default: benchmarks/ for "
        "a full run of everything, else a new temporary folder)",
    )
    return parser


def _settings(args):
    backends = args.backends or _installed_backends()
    unknown = [b for b in backends if b not in ALL_BACKENDS]
    if unknown or not backends:
        raise SystemExit(
            f"--backends must name some of {', '.join(ALL_BACKENDS)}. "
            f"Received: {backends}"
        )
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if repeats < 1:
        raise SystemExit(f"--repeats must be >= 1. Received: {repeats}")
    peers = args.peers if args.peers is not None else not args.quick
    return {
        "quick": args.quick,
        "backends": backends,
        # PyTorch runs eagerly: no per-process compilation of the large
        # capsule models, so its memory sweep is the quickest.
        "capsule_backends": args.capsule_backends
        or (["torch"] if "torch" in backends else backends[:1]),
        "peers": peers,
        "repeats": repeats,
    }


def _output_folder(args):
    if args.output is not None:
        return args.output
    if not args.quick and not args.only:
        return _jobs.BENCHMARKS_DIR
    return pathlib.Path(tempfile.mkdtemp(prefix="anysma-benchmarks-"))


def _command_text(argv):
    return " ".join(["python benchmarks/run.py"] + list(argv))


def _summarize(name, jobs, settings, entry, errors):
    _, summarize = _benchmarks.BENCHMARKS[name]
    entry.pop("error", None)
    try:
        entry.update(summarize(jobs, settings))
    except Exception as error:  # noqa: BLE001  (reported in RESULTS.md)
        traceback.print_exc()
        entry["error"] = f"{type(error).__name__}: {error}"
        errors.append(f"{name}: summary failed: {entry['error']}")


def _write(report, output):
    # The learning trajectories come from their own script and stay, and so
    # do the sections the other scripts wrote into the file this replaces.
    previous = ""
    if (output / "RESULTS.md").exists():
        previous = (output / "RESULTS.md").read_text()
    kept = _report.script_sections(previous, exclude=("capsule_learning",))
    markdown = "\n".join(
        [_report.render_markdown(report), capsule_learning.markdown_section(), *kept]
    )
    _report.write_atomically(
        output / "results.json", json.dumps(report, indent=1) + "\n"
    )
    _report.write_atomically(output / "RESULTS.md", markdown)
    print(markdown)
    print(f"Wrote {output / 'RESULTS.md'} and {output / 'results.json'}")


def _rerender(args):
    report = json.loads(args.from_json.read_text())
    errors = []
    for name, entry in report["benchmarks"].items():
        _summarize(name, entry["jobs"], report["settings"], entry, errors)
    _write(report, args.output or args.from_json.parent)
    return 1 if errors else 0


def _stop_on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.from_json is not None:
        return _rerender(args)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    settings = _settings(args)
    output = _output_folder(args)
    names = args.only or list(_benchmarks.BENCHMARKS)

    if args.setup_peers and settings["peers"]:
        from peers import setup_peers

        for peer in setup_peers.PEERS:
            ok, message = setup_peers.setup_peer(peer)
            print(message, flush=True)

    started = time.perf_counter()
    report = {
        "command": _command_text(argv),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "quick" if settings["quick"] else "full",
        "repeats": settings["repeats"],
        "backends": settings["backends"],
        "machine": _report.machine_info(),
        "versions": _report.package_versions(),
        "revision": _report.git_revision(),
        "settings": settings,
        "peer_environments": (
            _report.peer_environments(_benchmarks.PEERS) if settings["peers"] else {}
        ),
        "benchmarks": {},
    }
    report["load_start"] = report["machine"]["load_average"]
    errors = []
    for name in names:
        plan, _ = _benchmarks.BENCHMARKS[name]
        print(f"== {name}", flush=True)
        jobs = plan(settings)
        _jobs.execute(
            jobs,
            memory_cap_bytes=args.memory_cap_gib * 2**30,
            batched=settings["quick"],
            log=lambda line: print(line, flush=True),
        )
        entry = {"description": DESCRIPTIONS[name], "jobs": jobs}
        _summarize(name, jobs, settings, entry, errors)
        report["benchmarks"][name] = entry
        # Keep what is measured so far (a partial report) on disk.
        report["wall_s"] = time.perf_counter() - started
        report["load_end"] = list(os.getloadavg())
        _report.write_atomically(
            output / "results.json", json.dumps(report, indent=1) + "\n"
        )
        for job in jobs:
            for result in job["results"]:
                if job["peer"] is None and result.get("status") == "error":
                    where = f"{name}/{job['case']} [{job['backend']}]"
                    errors.append(f"{where}: {result.get('reason')}")
    report["wall_s"] = time.perf_counter() - started
    report["load_end"] = list(os.getloadavg())

    _write(report, output)
    if errors:
        print("Errors:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

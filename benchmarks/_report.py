"""Machine information, versions, peer pins, and the RESULTS.md rendering."""

import importlib.metadata
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys

from _jobs import BENCHMARKS_DIR
from _jobs import REPO_ROOT
from _jobs import VENVS_DIR

LIBRARIES = (
    "anysma",
    "keras",
    "jax",
    "jaxlib",
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "numpy",
    "scipy",
    "scikit-learn",
)


def write_atomically(path, text):
    """Write `text` to a temporary file next to `path`, then rename it."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def replace_section(path, start, end, section):
    """Replace the text between the markers `start` and `end` of the file
    `path` by `section` (which holds both markers), or append it."""
    text = ""
    if os.path.exists(path):
        with open(path) as stream:
            text = stream.read()
    if start in text and end in text:
        before = text[: text.index(start)]
        after = text[text.index(end) + len(end) :].lstrip("\n")
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    write_atomically(path, text)


_SECTION = re.compile(
    r"<!-- (?P<name>\w+): written by benchmarks/(?P=name)\.py -->\n"
    r".*?<!-- /(?P=name) -->\n",
    re.DOTALL,
)


def script_sections(text, exclude=()):
    """The sections of RESULTS.md that other scripts wrote, in order.

    Each is the text between (and with) the markers of
    `write_results_section`; sections named in `exclude` are left out.
    """
    return [
        match.group(0)
        for match in _SECTION.finditer(text)
        if match.group("name") not in exclude
    ]


RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def write_results_section(name, description, table):
    """Put `## name`, `description` and `table` into RESULTS.md.

    The section sits between the markers of `benchmarks/<name>.py`, so a
    new run replaces the previous one and leaves the other sections alone.
    """
    start = f"<!-- {name}: written by benchmarks/{name}.py -->"
    end = f"<!-- /{name} -->"
    section = f"{start}\n## {name}\n\n{description}\n\n{table}\n\n{end}\n"
    replace_section(RESULTS_PATH, start, end, section)


def rows_per_backend(script, backends, arguments=()):
    """Run `script --worker *arguments` once per backend, in a fresh process.

    Each worker prints its result rows as one JSON list on its last line;
    returns all rows, backend after backend.
    """
    rows = []
    for backend in backends:
        output = subprocess.run(
            [sys.executable, os.path.abspath(script), "--worker", *arguments],
            env=dict(os.environ, KERAS_BACKEND=backend),
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        rows += json.loads(output.strip().splitlines()[-1])
    return rows


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def machine_info():
    """CPU, cores, memory, GPU, OS and the load average now."""
    cpu = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = None
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) * 1024
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            gpu = subprocess.run(
                [
                    "nvidia-smi",
                    "--query-gpu=name,memory.total,driver_version",
                    "--format=csv,noheader",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            gpu = "nvidia-smi failed"
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "gpu": gpu or "none",
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": list(os.getloadavg()),
    }


def package_versions():
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_revision():
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return revision + (" (with uncommitted changes)" if dirty else "")


def peer_environments(peers):
    """The pins and the installed packages of each peer environment."""
    environments = {}
    for peer in peers:
        requirements = BENCHMARKS_DIR / "peers" / f"requirements-{peer}.txt"
        pins = [
            line.strip()
            for line in _read(requirements).splitlines()
            if line.strip() and not line.startswith("#")
        ]
        freeze_text = _read(VENVS_DIR / peer / "freeze.txt")
        environments[peer] = {
            "pins": pins,
            "installed": freeze_text.split() if freeze_text else [],
            "status": "ready" if freeze_text else "not set up",
        }
    return environments


# === Markdown ===


def markdown_table(columns, rows):
    """A Markdown table of `columns` (headers) and `rows` (lists of cells)."""

    def cell(value):
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _met_text(met):
    return {True: "met", False: "**missed**", None: "n/a"}[met]


def render_markdown(report):
    machine = report["machine"]
    out = [
        "# anysma benchmarks",
        "",
        "Generated by `" + report["command"] + "` — do not edit by hand; "
        "re-run the command to refresh.",
        "",
        f"- Date: {report['date']}; mode: {report['mode']}; repeats: "
        f"{report['repeats']}; total wall time: {report['wall_s'] / 60:.1f} min",
        f"- Revision: {report.get('revision') or 'unknown'}",
        "",
        "## Machine",
        "",
        markdown_table(
            ["CPU", "cores", "memory", "GPU", "OS", "Python"],
            [
                [
                    machine["cpu"],
                    machine["cores"],
                    f"{machine['memory_bytes'] / 2**30:.1f} GiB"
                    if machine["memory_bytes"]
                    else "?",
                    machine["gpu"],
                    machine["os"],
                    machine["python"],
                ]
            ],
        ),
        "",
        "Load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{v:.2f}" for v in report["load_start"])
        + "; at the end: "
        + ", ".join(f"{v:.2f}" for v in report["load_end"])
        + f". The machine has {machine['cores']} cores; a load above that means "
        "other processes competed for them during the run, so timings are noisy "
        "(treat differences below ~30 % as noise). Ratios compare measurements "
        "interleaved in the same run, which cancels part of the load.",
        "",
        "## Library versions (anysma environment)",
        "",
        markdown_table(
            ["package", "version"],
            [[name, version] for name, version in report["versions"].items()],
        ),
        "",
        "Backends measured: " + ", ".join(report["backends"]) + ".",
        "",
    ]
    if report["peer_environments"]:
        out += [
            "## Peer environments",
            "",
            "Each peer runs in its own virtual environment "
            "(`python benchmarks/peers/setup_peers.py`) with these pins "
            "(`benchmarks/peers/requirements-<peer>.txt`):",
            "",
            markdown_table(
                ["peer", "status", "pins"],
                [
                    [peer, env["status"], ", ".join(env["pins"])]
                    for peer, env in report["peer_environments"].items()
                ],
            ),
            "",
        ]
        for peer, env in report["peer_environments"].items():
            if env["installed"]:
                out += [
                    f"<details><summary>{peer}: all {len(env['installed'])} "
                    "installed packages</summary>",
                    "",
                    ", ".join(env["installed"]),
                    "",
                    "</details>",
                    "",
                ]
    targets = [t for b in report["benchmarks"].values() for t in b.get("targets", [])]
    if targets:
        met = sum(1 for t in targets if t["met"] is True)
        missed = sum(1 for t in targets if t["met"] is False)
        out += [
            "## Targets",
            "",
            f"{met} met, {missed} missed, {len(targets) - met - missed} not "
            "measurable in this run.",
            "",
            markdown_table(
                [
                    "benchmark",
                    "target",
                    "subject",
                    "measured",
                    "met",
                    "by how much / why",
                ],
                [
                    [
                        t["benchmark"],
                        t["target"],
                        t["subject"],
                        t["measured"],
                        _met_text(t["met"]),
                        t["reason"],
                    ]
                    for t in targets
                ],
            ),
            "",
        ]
    for name, benchmark in report["benchmarks"].items():
        out += [f"## {name}", ""]
        if benchmark.get("description"):
            out += [benchmark["description"], ""]
        if benchmark.get("error"):
            out += [f"Summary failed: {benchmark['error']}", ""]
        for section in benchmark.get("sections", []):
            out += [f"### {section['title']}", ""]
            out += [markdown_table(section["columns"], section["rows"]), ""]
            out += [note for note in section.get("notes", []) if note]
            out += [""]
    return "\n".join(out).rstrip() + "\n"

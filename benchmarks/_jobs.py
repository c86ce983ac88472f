"""Running benchmark jobs: one fresh subprocess per measurement.

A job is one configuration of one worker script for one anysma backend
(the project's Python with `KERAS_BACKEND` set) or one peer library (the
Python of that peer's virtual environment). The subprocess prints one JSON
line (see `_protocol.emit`); its resident memory is watched, and it is
stopped when it passes the memory cap or the time limit, which is then its
result.
"""

import json
import os
import pathlib
import subprocess
import sys
import time

BENCHMARKS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
VENVS_DIR = BENCHMARKS_DIR / ".venvs"
RESULT_MARKER = "@@RESULT@@"


def peer_python(peer):
    """The interpreter of `peer`'s environment, or `None` with the reason."""
    python = VENVS_DIR / peer / "bin" / "python"
    if not python.exists() or not (VENVS_DIR / peer / "freeze.txt").exists():
        return None, (
            f"peer environment '{peer}' is not set up "
            "(run `python benchmarks/peers/setup_peers.py`)"
        )
    return python, None


def make_job(benchmark, case, script, config, backend=None, peer=None, **extra):
    """A job description; exactly one of `backend` and `peer` is given."""
    job = {
        "benchmark": benchmark,
        "case": case,
        "script": script,
        "config": config,
        "backend": backend,
        "peer": peer,
        "library": "anysma" if peer is None else peer,
        "repeats": 1,
        "timeout_s": 900,
        "results": [],
    }
    job.update(extra)
    return job


def _rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _environment(backend):
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONWARNINGS"] = "ignore"
    env.pop("KERAS_BACKEND", None)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    return env


def run_process(python, script, config, backend, timeout_s, memory_cap_bytes):
    """Run one worker process; return its parsed result dict.

    The result gets `process_wall_s` (the whole process, imports included). A
    process past `memory_cap_bytes` resident memory or `timeout_s` is killed
    and reported as `"exceeded"` with the reason.
    """
    command = [str(python), str(BENCHMARKS_DIR / script), json.dumps(config)]
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=_environment(backend),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout_parts, stderr_parts = [], []
    killed_reason, peak_seen = None, 0
    try:
        while True:
            try:
                out, err = process.communicate(timeout=0.2)
                stdout_parts.append(out or "")
                stderr_parts.append(err or "")
                break
            except subprocess.TimeoutExpired:
                peak_seen = max(peak_seen, _rss_bytes(process.pid))
                elapsed = time.perf_counter() - start
                if killed_reason is None and peak_seen > memory_cap_bytes:
                    killed_reason = (
                        f"stopped at the memory cap: resident memory passed "
                        f"{memory_cap_bytes / 2**30:.1f} GiB"
                    )
                elif killed_reason is None and elapsed > timeout_s:
                    killed_reason = f"stopped at the time limit of {timeout_s:.0f} s"
                if killed_reason is not None:
                    process.kill()
    finally:
        # Never leave a worker behind (interrupt, SIGTERM of the runner).
        if process.poll() is None:
            process.kill()
            process.wait()
    wall_s = time.perf_counter() - start
    stdout = "".join(stdout_parts)
    if killed_reason is not None:
        return {
            "status": "exceeded",
            "reason": killed_reason,
            "peak_rss_bytes": peak_seen,
            "process_wall_s": wall_s,
        }
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
    if result is None:
        tail = "".join(stderr_parts).strip().splitlines()[-3:]
        result = {
            "status": "error",
            "reason": f"exit code {process.returncode}, no result; " + " | ".join(tail),
        }
    elif result.get("status") == "error":
        tail = "".join(stderr_parts).strip().splitlines()[-1:]
        result["traceback_tail"] = tail
    result["process_wall_s"] = wall_s
    return result


def _python_of(job):
    if job["peer"] is None:
        return sys.executable, None
    return peer_python(job["peer"])


def _label(job):
    if job["peer"] is not None:
        who = job["peer"]
    elif job.get("implementation") == "broadcast":
        who = f"broadcast baseline:{job['backend']}"
    else:
        who = f"anysma:{job['backend']}"
    return f"{job['benchmark']}/{job['case']} [{who}]"


def execute(jobs, memory_cap_bytes, batched=False, log=print):
    """Run every job `job["repeats"]` times, interleaving the repeats.

    Repeat 1 of every job runs before repeat 2 of any, so slow drifts of the
    machine's load spread over all jobs instead of biasing one.

    With `batched=True` (quick mode) the configurations of each worker
    script and backend/peer run in one process (repeats are ignored): fast,
    but the peak RSS is then shared by those configurations.
    """
    if batched:
        groups = {}
        for job in jobs:
            if job.get("skip_reason"):
                job["results"].append(
                    {"status": "skipped", "reason": job["skip_reason"]}
                )
                continue
            key = (job["script"], job["backend"], job["peer"])
            groups.setdefault(key, []).append(job)
        for (script, backend, _), members in groups.items():
            python, reason = _python_of(members[0])
            if python is None:
                for job in members:
                    job["results"].append({"status": "skipped", "reason": reason})
                continue
            started = time.perf_counter()
            result = run_process(
                python,
                script,
                [job["config"] for job in members],
                backend,
                sum(job["timeout_s"] for job in members),
                memory_cap_bytes,
            )
            items = result.get("results")
            for index, job in enumerate(members):
                if items is None:
                    job["results"].append(dict(result))
                else:
                    item = dict(items[index])
                    item["shared_process"] = True
                    item["process_wall_s"] = result["process_wall_s"]
                    job["results"].append(item)
            log(
                f"  {script} [{backend or members[0]['peer']}] "
                f"{len(members)} configurations: "
                f"{time.perf_counter() - started:.1f} s, {result['status']}"
            )
        return jobs
    rounds = max((job["repeats"] for job in jobs), default=0)
    for repeat in range(rounds):
        for job in jobs:
            if repeat >= job["repeats"]:
                continue
            python, reason = _python_of(job)
            if python is None:
                if not job["results"]:
                    job["results"].append({"status": "skipped", "reason": reason})
                continue
            if job.get("skip_reason"):
                if not job["results"]:
                    job["results"].append(
                        {"status": "skipped", "reason": job["skip_reason"]}
                    )
                continue
            result = run_process(
                python,
                job["script"],
                job["config"],
                job["backend"],
                job["timeout_s"],
                memory_cap_bytes,
            )
            job["results"].append(result)
            detail = "" if result["status"] == "ok" else f" ({result.get('reason')})"
            log(
                f"  [{repeat + 1}/{job['repeats']}] {_label(job)}: "
                f"{result['process_wall_s']:.1f} s, {result['status']}{detail}"
            )
    return jobs

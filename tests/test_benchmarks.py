"""Tests of `benchmarks/`: the quick mode end to end, the data protocol, the baselines.

The quick mode runs anysma only, on the current backend, at tiny sizes; the
test checks the structure of the JSON it writes and that every measurement
is a positive number. Timings are never checked.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from anysma.testing.datasets import real_data_file

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"
#: The folder of the real MNIST, found through ANYSMA_DATA_DIR (set by
#: scripts/test.sh); the benchmarks read it with --data_dir.
MNIST = real_data_file("mnist.npz")
DATA_DIR = pathlib.Path(MNIST).parent if MNIST else None
NEEDS_MNIST = "needs the real mnist.npz in a folder of ANYSMA_DATA_DIR"

sys.path.insert(0, str(BENCHMARKS_DIR))

import _benchmarks  # noqa: E402
import _broadcast_models  # noqa: E402
import _protocol  # noqa: E402


def _run_quick(tmp_path, only):
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        ANYSMA_BENCHMARK_DATA=str(DATA_DIR),
    )
    command = [
        sys.executable,
        str(BENCHMARKS_DIR / "run.py"),
        "--quick",
        "--backends",
        keras.backend.backend(),
        "--output",
        str(tmp_path),
    ]
    if only:
        command += ["--only", *only]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    assert completed.returncode == 0, (
        completed.stdout[-3000:] + completed.stderr[-3000:]
    )
    report = json.loads((tmp_path / "results.json").read_text())
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "## Machine" in markdown and "Load average" in markdown
    assert report["mode"] == "quick"
    assert report["machine"]["cores"] >= 1
    assert report["versions"]["keras"] == keras.__version__
    assert report["backends"] == [keras.backend.backend()]
    return report


def _results(report, benchmark):
    jobs = report["benchmarks"][benchmark]["jobs"]
    assert jobs
    results = [result for job in jobs for result in job["results"]]
    assert results and all(result["status"] == "ok" for result in results), results
    assert report["benchmarks"][benchmark]["sections"]
    return results


def _check_lvq_and_kernels(report):
    for result in _results(report, "lvq_training"):
        assert result["samples_per_s"] > 0
        assert result["fit_seconds"] > 0
        assert 0 <= result["test_accuracy"] <= 1
        assert result["accuracy_curve"]
    for result in _results(report, "distance_kernels"):
        assert len(result["kernels"]) >= 10
        for kernel in result["kernels"]:
            assert all(value > 0 for value in kernel["kernel_gflops_rounds"])
            assert all(value > 0 for value in kernel["matmul_gflops_rounds"])
    targets = report["benchmarks"]["distance_kernels"]["targets"]
    assert {target["met"] for target in targets} <= {True, False}
    (sklearn_result,) = _results(report, "sklearn")
    for model in sklearn_result["models"].values():
        assert model["status"] == "ok", model
        assert len(model["fit_seconds_per_fold"]) == 5
        assert all(seconds > 0 for seconds in model["fit_seconds_per_fold"])


@pytest.mark.skipif(DATA_DIR is None, reason=NEEDS_MNIST)
def test_quick_mode_lvq_kernels_sklearn(tmp_path):
    # A section that another script wrote into the file survives the run.
    other = (
        "<!-- other_script: written by benchmarks/other_script.py -->\n"
        "## other_script\n\n| a |\n|---|\n| 1 |\n\n<!-- /other_script -->\n"
    )
    (tmp_path / "RESULTS.md").write_text("# old results\n\n" + other)
    report = _run_quick(tmp_path, ["lvq_training", "distance_kernels", "sklearn"])
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert other in markdown and "# old results" not in markdown
    assert set(report["benchmarks"]) == {"lvq_training", "distance_kernels", "sklearn"}
    _check_lvq_and_kernels(report)


@pytest.mark.large
@pytest.mark.skipif(DATA_DIR is None, reason=NEEDS_MNIST)
def test_quick_mode_all_benchmarks(tmp_path):
    report = _run_quick(tmp_path, None)
    assert set(report["benchmarks"]) == set(_benchmarks.BENCHMARKS)
    _check_lvq_and_kernels(report)
    for result in _results(report, "capsules"):
        assert result["peak_rss_bytes"] > 0
        assert result["samples_per_s"] > 0
    cases = {job["case"] for job in report["benchmarks"]["capsules"]["jobs"]}
    assert {"throughput/capsnet", "throughput/lvq_capsule_network"} <= cases
    assert "layer_memory" in cases


@pytest.mark.skipif(DATA_DIR is None, reason=NEEDS_MNIST)
def test_capsule_learning_trajectory(tmp_path):
    # The reference trains fastest; 4 steps of 128 images, evaluated twice.
    command = [
        sys.executable,
        str(BENCHMARKS_DIR / "capsule_learning.py"),
        "--models",
        "reference",
        "--samples",
        "512",
        "--val",
        "100",
        "--every",
        "2",
        "--backend",
        keras.backend.backend(),
        "--data_dir",
        str(DATA_DIR),
        "--output",
        str(tmp_path),
    ]
    # An earlier run's results survive: new ones are merged in.
    earlier = {"b": {"reference": {"final_validation_accuracy": 0.5}}}
    (tmp_path / "capsule_learning.json").write_text(json.dumps(earlier))
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| reference: LVQ-CN trunk" in completed.stdout
    stored = json.loads((tmp_path / "capsule_learning.json").read_text())
    assert stored["b"] == earlier["b"]
    result = stored["a"]["reference"]
    assert result["backend"] == keras.backend.backend()
    assert result["steps"] == 4 and result["validation_samples"] == 100
    assert [point["step"] for point in result["trajectory"]] == [2, 4]
    for point in result["trajectory"]:
        assert 0 <= point["validation_accuracy"] <= 1
        assert point["seconds"] > 0
    assert (tmp_path / "capsule_learning_a.png").stat().st_size > 10_000


def test_orthogonalization_benchmark_agrees_with_the_svd():
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS_DIR / "orthogonalization.py"),
            "--backends",
            keras.backend.backend(),
            "--no_write",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [
        line.split("|")
        for line in completed.stdout.splitlines()
        if line.startswith(f"| {keras.backend.backend()} ")
    ]
    assert len(rows) == 3
    # Both algorithms give the same bases: the last column is their largest
    # difference.
    assert all(float(row[-2]) < 1e-5 for row in rows)


# === Data protocol ===


def test_stratified_folds_partition_and_stratify():
    labels = np.array([0] * 138 + [1] * 77)
    folds = _protocol.stratified_folds(labels)
    assert len(folds) == 5
    joined = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(joined, np.arange(len(labels)))
    for fold in folds:
        counts = np.bincount(labels[fold], minlength=2)
        assert abs(counts[0] - 138 / 5) <= 1 and abs(counts[1] - 77 / 5) <= 1
    # The seed fixes the folds.
    again = _protocol.stratified_folds(labels)
    for fold, fold_again in zip(folds, again):
        np.testing.assert_array_equal(fold, fold_again)


def test_standardize_uses_training_statistics():
    rng = np.random.default_rng(0)
    x_train = rng.normal(3.0, 2.0, size=(50, 4))
    x_test = rng.normal(3.0, 2.0, size=(10, 4))
    train, test = _protocol.standardize(x_train, x_test)
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-12)
    expected = (x_test - x_train.mean(axis=0)) / x_train.std(axis=0)
    np.testing.assert_allclose(test, expected)


@pytest.mark.skipif(DATA_DIR is None, reason=NEEDS_MNIST)
def test_tecator_protocol_matches_the_documented_split(monkeypatch):
    # The data folder the tests found, also where the checkout has no
    # `../shared/data` next to it (the benchmarks' own default).
    monkeypatch.setattr(_protocol, "DATA_DIR", DATA_DIR)
    x_train, y_train, x_test, y_test = _protocol.load_tecator_split()
    assert x_train.shape == (172, 100) and x_test.shape == (43, 100)
    # 15 positives in the test rows: a majority baseline of 28 / 43.
    assert int(y_test.sum()) == 15
    assert int(y_train.sum()) + int(y_test.sum()) == 77


def test_summary_statistics():
    summary = _benchmarks.stat([3.0, 1.0, 2.0, float("nan")])
    assert summary == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert _benchmarks.fmt_stat(summary) == "2.00 [1.00–3.00]"
    assert _benchmarks.stat([]) is None


# === Broadcast baselines against NumPy ===


def test_broadcast_tangent_capsules_match_numpy():
    rng = np.random.default_rng(0)
    batch, channels, dim, capsules, subspace = 2, 5, 6, 3, 2
    signals = rng.normal(size=(batch, channels, dim)).astype("float32")
    dissimilarities = rng.random((batch, channels)).astype("float32")
    layer = _broadcast_models.BroadcastTangentCapsules(capsules, subspace, 0.25)
    routed, routed_dissimilarities = layer((signals, dissimilarities))
    prototypes = keras.ops.convert_to_numpy(layer.prototypes)
    subspaces = keras.ops.convert_to_numpy(layer.subspaces)

    differences = signals[:, None] - prototypes[None, :, None]  # (B, P, C, D)
    theta = np.einsum("bpcd,pdr->bpcr", differences, subspaces)
    residual = differences - np.einsum("bpcr,pdr->bpcd", theta, subspaces)
    distances = np.sqrt(np.maximum((residual**2).sum(-1), 1e-12))
    mixed = 0.75 * dissimilarities[:, None] + 0.25 * distances
    weights = np.exp(-mixed) / np.exp(-mixed).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(routed),
        np.einsum("bpc,bcd->bpd", weights, signals),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(routed_dissimilarities),
        (weights * mixed).sum(axis=2),
        rtol=1e-4,
        atol=1e-5,
    )


def test_broadcast_digit_capsules_match_numpy():
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(2, 6, 4)).astype("float32")
    layer = _broadcast_models.BroadcastDigitCapsules(3, 5, routings=3)
    outputs = keras.ops.convert_to_numpy(layer(inputs))
    kernel = keras.ops.convert_to_numpy(layer.kernel)  # (N, K, d_out, d_in)

    def squash(s):
        norm2 = (s**2).sum(-1, keepdims=True)
        return norm2 / (1 + norm2) * s / np.sqrt(norm2 + 1e-7)

    predictions = np.einsum("nkoi,bni->bnko", kernel, inputs)
    logits = np.zeros(predictions.shape[:3])
    for iteration in range(3):
        couplings = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
        expected = squash(np.einsum("bnk,bnko->bko", couplings, predictions))
        if iteration < 2:
            logits = logits + np.einsum("bnko,bko->bnk", predictions, expected)
    np.testing.assert_allclose(outputs, expected, rtol=1e-4, atol=1e-5)


def test_stream_training_benchmark_learns_from_a_generated_stream():
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS_DIR / "stream_training.py"),
            "--sizes",
            "4096",
            "--no_write",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, KERAS_BACKEND=keras.backend.backend()),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    row = [line for line in completed.stdout.splitlines() if "| 4,096 |" in line]
    assert len(row) == 1, completed.stdout
    cells = [cell.strip() for cell in row[0].strip("|").split("|")]
    assert cells[0] == keras.backend.backend()
    assert 0 < float(cells[4]) <= float(cells[7])  # peak memory in MiB
    # k-means over the stream, then four steps: well above chance.
    assert float(cells[8]) > 0.3

"""Worker: achieved GFLOP/s of anysma's distance kernels vs a plain matmul.

Run by `run.py` in a fresh process with `KERAS_BACKEND` set. For every
kernel of `anysma.ops` (forward pass, float32) it counts the kernel's
nominal floating-point work, times it, and times a plain matrix multiply
`(rows, D) @ (D, K)` of the same inputs whose `2 * rows * D * K` flops equal
that work: the machine's ceiling for a kernel of that shape. Both are run
the same way: `jax.jit` on JAX, `tf.function` on TensorFlow, eager on
PyTorch (the way Keras runs them in training, without XLA on TensorFlow).

Nominal work (multiply-adds count 2): pairwise Euclidean `2 N P D`;
Minkowski `p != 2` `3 N P D`; Omega (global) `2 N D M + 2 N P M`; Omega
(local) `2 N P D M`; tangent (global) `2 N P D + 2 N D r`; tangent (local)
`2 N P D + 2 N P D r`; capsule forms with `R = B P C` rows: Minkowski `3 R D`,
Omega `2 R D M`, tangent `4 R D r`; capsule forms with shared signals and
`S = B C` rows: Euclidean `2 S P D`, Omega (global) `2 S D M + 2 S P M`,
tangent (local) `2 S P D (r + 1)`.

Each result also records the bytes of the kernel's inputs and the rate at
which the kernel streams them (GB/s), which is what limits the kernels that
have no matrix-product form.
"""

import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _protocol  # noqa: E402
import numpy as np  # noqa: E402

FULL_SIZES = {
    # MNIST-like GLVQ family: batch 2048, 784 features, 10 classes x 10.
    "pairwise": {"N": 2048, "D": 784, "P": 100, "M": 784, "M_local": 32, "r": 12},
    # LVQ-capsule Caps1 on 28 x 28: batch 32, 64 capsules, 14 x 14
    # positions, 64-d vectors, subspace 16.
    "capsule": {"B": 32, "P": 64, "C": 196, "D": 64, "M": 64, "r": 16},
}
QUICK_SIZES = {
    "pairwise": {"N": 128, "D": 64, "P": 20, "M": 64, "M_local": 8, "r": 4},
    "capsule": {"B": 4, "P": 8, "C": 16, "D": 16, "M": 16, "r": 4},
}


def _kernels(sizes):
    """`(name, shape text, fn, inputs, nominal flops, rows, D)` of each kernel."""
    from anysma import ops as aops

    rng = np.random.default_rng(0)

    def array(*shape):
        return rng.standard_normal(shape).astype("float32")

    s = sizes["pairwise"]
    n, d, p, m, ml, r = s["N"], s["D"], s["P"], s["M"], s["M_local"], s["r"]
    x, w = array(n, d), array(p, d)
    shape = f"N={n} D={d} P={p}"
    kernels = [
        (
            "squared_euclidean_distance",
            shape,
            aops.squared_euclidean_distance,
            (x, w),
            2 * n * p * d,
            n,
            d,
        ),
        (
            "euclidean_distance",
            shape,
            aops.euclidean_distance,
            (x, w),
            2 * n * p * d,
            n,
            d,
        ),
        (
            "minkowski_distance(p=1)",
            shape,
            lambda a, b: aops.minkowski_distance(a, b, order_p=1),
            (x, w),
            3 * n * p * d,
            n,
            d,
        ),
        (
            "omega_distance(global)",
            f"{shape} M={m}",
            aops.omega_distance,
            (x, w, array(d, m) / math.sqrt(d)),
            2 * n * d * m + 2 * n * p * m,
            n,
            d,
        ),
        (
            "omega_distance(local)",
            f"{shape} M={ml}",
            aops.omega_distance,
            (x, w, array(p, d, ml) / math.sqrt(d)),
            2 * n * p * d * ml,
            n,
            d,
        ),
        (
            "tangent_distance(global)",
            f"{shape} r={r}",
            aops.tangent_distance,
            (x, w, np.linalg.qr(array(d, r))[0].astype("float32")),
            2 * n * p * d + 2 * n * d * r,
            n,
            d,
        ),
        (
            "tangent_distance(local)",
            f"{shape} r={r}",
            aops.tangent_distance,
            (x, w, np.linalg.qr(array(p, d, r))[0].astype("float32")),
            2 * n * p * d + 2 * n * p * d * r,
            n,
            d,
        ),
        (
            "restricted_tangent_distance(local)",
            f"{shape} r={r}",
            aops.restricted_tangent_distance,
            (
                x,
                w,
                np.linalg.qr(array(p, d, r))[0].astype("float32"),
                np.abs(array(p, r)),
            ),
            2 * n * p * d + 2 * n * p * d * r,
            n,
            d,
        ),
    ]
    s = sizes["capsule"]
    b, p, c, d, m, r = s["B"], s["P"], s["C"], s["D"], s["M"], s["r"]
    rows = b * p * c
    signals, protos = array(b, p, c, d), array(p, d)
    shape = f"B={b} P={p} C={c} D={d}"
    kernels += [
        (
            "capsule_minkowski_distance",
            shape,
            aops.capsule_minkowski_distance,
            (signals, protos),
            3 * rows * d,
            rows,
            d,
        ),
        (
            "capsule_omega_distance(global)",
            f"{shape} M={m}",
            aops.capsule_omega_distance,
            (signals, protos, array(d, m) / math.sqrt(d)),
            2 * rows * d * m,
            rows,
            d,
        ),
        (
            "capsule_tangent_distance(local)",
            f"{shape} r={r}",
            aops.capsule_tangent_distance,
            (signals, protos, np.linalg.qr(array(p, d, r))[0].astype("float32")),
            4 * rows * d * r,
            rows,
            d,
        ),
        (
            "capsule_restricted_tangent_distance(local)",
            f"{shape} r={r}",
            aops.capsule_restricted_tangent_distance,
            (
                signals,
                protos,
                np.linalg.qr(array(p, d, r))[0].astype("float32"),
                np.abs(array(p, r)),
            ),
            4 * rows * d * r,
            rows,
            d,
        ),
    ]
    # Shared (sparse) signals `(B, 1, C, D)`, the layout of anysma's
    # capsule models: every signal meets all P prototypes.
    shared_rows = b * c
    shared = array(b, 1, c, d)
    shared_shape = f"B={b} (shared) P={p} C={c} D={d}"
    local_basis = np.linalg.qr(array(p, d, r))[0].astype("float32")
    kernels += [
        (
            "capsule_minkowski_distance(shared)",
            shared_shape,
            aops.capsule_minkowski_distance,
            (shared, protos),
            2 * shared_rows * p * d,
            shared_rows,
            d,
        ),
        (
            "capsule_omega_distance(global, shared)",
            f"{shared_shape} M={m}",
            aops.capsule_omega_distance,
            (shared, protos, array(d, m) / math.sqrt(d)),
            2 * shared_rows * d * m + 2 * shared_rows * p * m,
            shared_rows,
            d,
        ),
        (
            "capsule_tangent_distance(local, shared)",
            f"{shared_shape} r={r}",
            aops.capsule_tangent_distance,
            (shared, protos, local_basis),
            2 * shared_rows * p * d * (r + 1),
            shared_rows,
            d,
        ),
        (
            "capsule_restricted_tangent_distance(local, shared)",
            f"{shared_shape} r={r}",
            aops.capsule_restricted_tangent_distance,
            (shared, protos, local_basis, np.abs(array(p, r))),
            2 * shared_rows * p * d * (r + 1),
            shared_rows,
            d,
        ),
    ]
    return kernels


def _compiled(fn, backend):
    if backend == "jax":
        import jax

        return jax.jit(fn)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn


def _block(value, backend):
    if backend == "jax":
        value.block_until_ready()
    return value


def _seconds_per_call(fn, args, backend, min_seconds, min_calls):
    """Median seconds per call after two warm-up calls."""
    for _ in range(2):
        _block(fn(*args), backend)
    times = []
    total = 0.0
    while len(times) < min_calls or total < min_seconds:
        start = time.perf_counter()
        _block(fn(*args), backend)
        times.append(time.perf_counter() - start)
        total += times[-1]
        if len(times) >= 200:
            break
    return float(np.median(times))


def main(config):
    import keras
    from keras import ops

    backend = keras.backend.backend()
    sizes = QUICK_SIZES if config.get("quick") else FULL_SIZES
    min_seconds = config.get("min_seconds", 0.3)
    min_calls = config.get("min_calls", 5)
    rounds = config.get("rounds", 1)
    cases = []
    for name, shape, fn, inputs, flops, rows, dim in _kernels(sizes):
        columns = max(1, round(flops / (2 * rows * dim)))
        rng = np.random.default_rng(1)
        cases.append(
            {
                "kernel": name,
                "shape": shape,
                "matmul_shape": f"({rows}, {dim}) @ ({dim}, {columns})",
                "flops": flops,
                "input_bytes": int(sum(np.asarray(value).nbytes for value in inputs)),
                "matmul_flops": 2 * rows * dim * columns,
                "fn": _compiled(fn, backend),
                "args": tuple(ops.convert_to_tensor(value) for value in inputs),
                "matmul_args": (
                    ops.convert_to_tensor(
                        rng.standard_normal((rows, dim)).astype("float32")
                    ),
                    ops.convert_to_tensor(
                        rng.standard_normal((dim, columns)).astype("float32")
                    ),
                ),
            }
        )
    matmul = _compiled(ops.matmul, backend)
    timings = {case["kernel"]: {"kernel": [], "matmul": []} for case in cases}
    # Rounds over all kernels, so that a change of the machine's load hits
    # every kernel alike instead of a few of them.
    for _ in range(rounds):
        for case in cases:
            timing = timings[case["kernel"]]
            timing["kernel"].append(
                _seconds_per_call(
                    case["fn"], case["args"], backend, min_seconds, min_calls
                )
            )
            timing["matmul"].append(
                _seconds_per_call(
                    matmul, case["matmul_args"], backend, min_seconds, min_calls
                )
            )
    results = []
    for case in cases:
        timing = timings[case["kernel"]]
        kernel_gflops = [case["flops"] / t / 1e9 for t in timing["kernel"]]
        matmul_gflops = [case["matmul_flops"] / t / 1e9 for t in timing["matmul"]]
        results.append(
            {
                "kernel": case["kernel"],
                "shape": case["shape"],
                "matmul_shape": case["matmul_shape"],
                "flops": case["flops"],
                "input_bytes": case["input_bytes"],
                "kernel_seconds": float(np.median(timing["kernel"])),
                "matmul_seconds": float(np.median(timing["matmul"])),
                "kernel_gflops_rounds": kernel_gflops,
                "matmul_gflops_rounds": matmul_gflops,
                "fraction_rounds": [
                    k / m for k, m in zip(kernel_gflops, matmul_gflops)
                ],
            }
        )
    return {
        "library": "anysma",
        "backend": backend,
        "rounds": rounds,
        "min_calls": min_calls,
        "kernels": results,
    }


if __name__ == "__main__":
    sys.exit(_protocol.run_worker(main))

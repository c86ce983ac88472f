import json
import os
import subprocess
import sys
import tempfile

import pytest

from anysma import cli
from anysma.experiments import gmlvq_tecator
from anysma.testing import TestCase

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.requires_trainable_backend
class GMLVQTecatorTest(TestCase):
    def test_short_run_writes_outputs(self):
        with tempfile.TemporaryDirectory() as directory:
            summary = gmlvq_tecator.main(
                ["--epochs", "2", "--save_dir", directory, "--verbose", "0"]
            )
            folder = os.path.join(directory, "gmlvq_tecator")
            with open(os.path.join(folder, "summary.json")) as stream:
                self.assertEqual(json.load(stream), summary)
            for name in ("log.csv", "final.weights.h5"):
                self.assertTrue(os.path.exists(os.path.join(folder, name)), name)
            # Class means plus PCA already separate the classes well.
            self.assertGreater(summary["test_accuracy"], 0.8)
            weights = os.path.join(folder, "final.weights.h5")
            tested = gmlvq_tecator.main(
                ["-t", "-w", weights, "--save_dir", directory, "--verbose", "0"]
            )
            self.assertAlmostEqual(
                tested["test_accuracy"], summary["test_accuracy"], places=5
            )

    @pytest.mark.large
    def test_full_run_reaches_the_reported_accuracy(self):
        with tempfile.TemporaryDirectory() as directory:
            summary = gmlvq_tecator.main(["--save_dir", directory, "--verbose", "0"])
        self.assertGreaterEqual(summary["test_accuracy"], 0.95)


class CommandLineTest(TestCase):
    def test_list(self):
        lines = []
        original = sys.stdout.write
        try:
            sys.stdout.write = lines.append
            self.assertEqual(cli.main(["list"]), 0)
        finally:
            sys.stdout.write = original
        self.assertIn("gmlvq_tecator", "".join(lines))

    def test_unknown_experiment(self):
        self.assertEqual(cli.main(["run", "no_such_experiment"]), 2)

    def test_example_script_help(self):
        result = subprocess.run(
            [sys.executable, os.path.join(REPO, "examples", "gmlvq_tecator.py"), "-h"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": REPO},
            check=True,
        )
        for flag in ("--epochs", "--batch_size", "--lr", "--save_dir", "--testing"):
            self.assertIn(flag, result.stdout)

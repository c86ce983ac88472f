import json
import os
import tempfile

import pytest

from anysma.experiments import gmlvq_tecator
from anysma.testing import TestCase


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

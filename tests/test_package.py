import os
import subprocess
import sys
import tempfile

import anysma
from anysma.testing import TestCase


class PackageTest(TestCase):
    def test_public_namespaces(self):
        for name in anysma.__all__:
            self.assertTrue(hasattr(anysma, name), name)
        self.assertRegex(anysma.__version__, r"^\d+\.\d+\.\d+")

    def test_saved_model_loads_after_plain_import(self):
        # A fresh process that only runs `import anysma` must find every
        # registered class when it loads a `.keras` file.
        model = anysma.models.GMLVQ(input_dim=3, num_classes=2)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "gmlvq.keras")
            model.save(path)
            script = (
                "import sys, anysma, keras; "
                "model = keras.saving.load_model(sys.argv[1]); "
                "print(type(model).__name__)"
            )
            result = subprocess.run(
                [sys.executable, "-c", script, path],
                capture_output=True,
                text=True,
                check=True,
            )
        self.assertEqual(result.stdout.strip().splitlines()[-1], "GMLVQ")

    def test_every_skipped_docstring_example_says_why(self):
        # scripts/test.sh runs every docstring example; one that is skipped
        # must say in its "Example" header why the test suite cannot run it.
        root = os.path.dirname(anysma.__file__)
        unexplained = []
        for folder, _, files in os.walk(root):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as stream:
                    lines = stream.read().splitlines()
                header = ""
                for number, line in enumerate(lines, start=1):
                    if line.strip().startswith("Example"):
                        header = " ".join(lines[number - 1 : number + 1])
                    if "doctest: +SKIP" in line and (
                        "not run by the test suite" not in header
                    ):
                        unexplained.append(f"{os.path.relpath(path, root)}:{number}")
        self.assertEqual(unexplained, [])

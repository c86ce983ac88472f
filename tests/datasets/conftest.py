import pytest

from anysma.testing.datasets import real_data_file

#: The real dataset files, found through ANYSMA_DATA_DIR before any test
#: isolates the data folders (scripts/test.sh sets it).
REAL_DATA = {
    name: real_data_file(name)
    for name in ("mnist.npz", "fashion_mnist.npz", "tecator.npz")
}


@pytest.fixture(autouse=True)
def isolated_data_folders(tmp_path, monkeypatch):
    """Keep the user's data folders and download cache out of every test."""
    monkeypatch.delenv("ANYSMA_DATA_DIR", raising=False)
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "anysma-cache"))
    return tmp_path / "anysma-cache"


@pytest.fixture
def shared_data():
    """Return a function giving the path of a real dataset file, or skipping."""

    def path_of(file_name):
        path = REAL_DATA.get(file_name)
        if path is None:
            pytest.skip(
                f"the real {file_name} was not found in the folders of "
                "ANYSMA_DATA_DIR (scripts/test.sh sets it)"
            )
        return path

    return path_of

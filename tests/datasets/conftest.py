import os

import pytest

#: The offline copies of the real datasets, `../shared/data` from the repository root.
SHARED_DATA = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
)


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
        path = os.path.join(SHARED_DATA, file_name)
        if not os.path.isfile(path):
            pytest.skip(f"the offline copy {file_name} is not in ../shared/data")
        return path

    return path_of

import numpy as np

from anysma import datasets
from anysma.testing.datasets import write_cifar10
from anysma.testing.datasets import write_mnist_idx

NAMES = ["mnist", "fashion_mnist", "cifar10", "affnist", "smallnorb", "tecator"]


def test_status_of_an_empty_setup(tmp_path):
    entries = datasets.status(data_dir=str(tmp_path))
    assert [entry["name"] for entry in entries] == NAMES
    for entry in entries:
        assert set(entry) == {
            "name",
            "state",
            "present",
            "location",
            "files",
            "problem",
            "source",
        }
        assert entry["source"].startswith("http")
    by_name = {entry["name"]: entry for entry in entries}
    assert by_name["tecator"]["present"]
    for name in NAMES[:-1]:
        assert not by_name[name]["present"] and by_name[name]["location"] is None
    assert by_name["cifar10"]["files"] == ["cifar-10-python.tar.gz"]
    assert len(by_name["smallnorb"]["files"]) == 6


def test_status_finds_written_datasets(tmp_path, monkeypatch):
    write_mnist_idx(str(tmp_path / "env"), num_train=4, num_test=2)
    write_cifar10(str(tmp_path / "mine"), num_train=5, num_test=2)
    np.savez(tmp_path / "mine" / "fashion_mnist.npz", x_train=np.zeros(1))
    monkeypatch.setenv("ANYSMA_DATA_DIR", str(tmp_path / "env"))
    by_name = {
        entry["name"]: entry for entry in datasets.status(str(tmp_path / "mine"))
    }
    assert by_name["mnist"]["present"]
    assert by_name["mnist"]["location"] == str(tmp_path / "env" / "mnist")
    assert by_name["mnist"]["files"][0] == "train-images-idx3-ubyte.gz"
    assert by_name["cifar10"]["location"] == str(tmp_path / "mine" / "cifar10")
    assert by_name["fashion_mnist"]["files"] == ["fashion_mnist.npz"]
    assert not by_name["smallnorb"]["present"]

import hashlib
import json
import os
import pathlib

import keras
import numpy as np
import pytest

from anysma import weights


@pytest.fixture(autouse=True)
def isolated_registry(tmp_path, monkeypatch):
    """A fresh registry and download cache for every test."""
    monkeypatch.setattr(weights, "REGISTRY", {})
    monkeypatch.delenv("ANYSMA_WEIGHTS_REGISTRY", raising=False)
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def h5_bytes(tmp_path, tag):
    """The bytes of a small, valid HDF5 file holding `tag`.

    `get_weights` checks that what it returns is a readable HDF5 file, so the
    stand-ins for published weights must be real HDF5 files.
    """
    import h5py

    path = tmp_path / f"made-{len(os.listdir(tmp_path))}.h5"
    with h5py.File(path, "w") as handle:
        handle["tag"] = np.frombuffer(tag, dtype=np.uint8)
    data = path.read_bytes()
    path.unlink()
    return data


def published_file(tmp_path, data, name="remote.weights.h5"):
    path = tmp_path / "published" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def small_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def test_shipped_registry_has_no_dead_links():
    # Nothing is published yet, so the shipped registry must be empty.
    assert weights.REGISTRY == {}


@pytest.mark.parametrize(
    "name", ["mnist", "cifar10", "smallnorb48", "smallnorb48_el", "smallnorb48_az"]
)
def test_original_names_explain_how_to_get_weights(name):
    with pytest.raises(ValueError) as info:
        weights.get_weights(name)
    message = str(info.value)
    assert f"No pretrained weights named {name!r}" in message
    assert "anysma run lvq_caps_" in message
    assert "export_weights" in message and "ANYSMA_WEIGHTS_REGISTRY" in message


def test_setting_of_the_smallnorb_commands():
    assert weights.ORIGINAL_WEIGHTS["smallnorb48_el"].endswith("--setting elevation")
    assert weights.ORIGINAL_WEIGHTS["smallnorb48_az"].endswith("--setting azimuth")


def test_unknown_name():
    weights.register_weights("known", "https://example.org/w.weights.h5", "a" * 64)
    with pytest.raises(ValueError, match="Received: name_or_path='unknown'.*known"):
        weights.get_weights("unknown")


def test_existing_path_passes_through(tmp_path):
    path = tmp_path / "mine.weights.h5"
    path.write_bytes(h5_bytes(tmp_path, b"x"))
    assert weights.get_weights(str(path)) == str(path)


def test_missing_path():
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        weights.get_weights("nowhere.weights.h5")


def test_download_by_name(tmp_path, isolated_registry):
    data = h5_bytes(tmp_path, b"weights bytes")
    source, digest = published_file(tmp_path, data)
    weights.register_weights("toy", source.as_uri(), digest, experiment="toy_exp")
    path = weights.get_weights("toy", verbose=False)
    assert path == str(isolated_registry / "toy.weights.h5")
    with open(path, "rb") as stream:
        assert stream.read() == data
    # The verified copy is reused: the source may disappear.
    source.unlink()
    assert weights.get_weights("toy", verbose=False) == path


def test_cache_dir_argument(tmp_path):
    source, digest = published_file(tmp_path, h5_bytes(tmp_path, b"abc"))
    weights.register_weights("toy", source.as_uri(), digest)
    path = weights.get_weights(
        "toy", cache_dir=str(tmp_path / "elsewhere"), verbose=False
    )
    assert path == str(tmp_path / "elsewhere" / "toy.weights.h5")


def test_corrupted_download_is_rejected_and_removed(tmp_path, isolated_registry):
    source, _ = published_file(tmp_path, b"tampered")
    expected = hashlib.sha256(b"genuine").hexdigest()
    weights.register_weights("toy", source.as_uri(), expected)
    with pytest.raises(ValueError) as info:
        weights.get_weights("toy", verbose=False)
    message = str(info.value)
    assert expected in message
    assert hashlib.sha256(b"tampered").hexdigest() in message
    assert "toy.weights.h5" in message
    assert os.listdir(isolated_registry) == []


def test_stale_cached_copy_is_replaced(tmp_path, isolated_registry):
    isolated_registry.mkdir(parents=True)
    (isolated_registry / "toy.weights.h5").write_bytes(b"old version")
    data = h5_bytes(tmp_path, b"new version")
    source, digest = published_file(tmp_path, data)
    weights.register_weights("toy", source.as_uri(), digest)
    path = weights.get_weights("toy", verbose=False)
    with open(path, "rb") as stream:
        assert stream.read() == data


def test_register_validation():
    with pytest.raises(ValueError, match="sha256"):
        weights.register_weights("toy", "https://example.org/a", "abc")
    with pytest.raises(ValueError, match="url"):
        weights.register_weights("toy", "example.org/a", "a" * 64)
    with pytest.raises(ValueError, match="name"):
        weights.register_weights("a/b", "https://example.org/a", "a" * 64)
    weights.register_weights("toy", "https://example.org/a", "a" * 64)
    with pytest.raises(ValueError, match="overwrite=True"):
        weights.register_weights("toy", "https://example.org/b", "a" * 64)
    entry = weights.register_weights(
        "toy", "https://example.org/b", "B" * 64, overwrite=True
    )
    assert entry["url"] == "https://example.org/b" and entry["sha256"] == "b" * 64


def test_registry_file_from_environment(tmp_path, monkeypatch):
    data = h5_bytes(tmp_path, b"from json")
    source, digest = published_file(tmp_path, data)
    mapping = tmp_path / "registry.json"
    mapping.write_text(json.dumps({"toy": {"url": source.as_uri(), "sha256": digest}}))
    listing = tmp_path / "listing.json"
    listing.write_text(
        json.dumps([{"name": "other", "url": source.as_uri(), "sha256": digest}])
    )
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", f"{mapping}{os.pathsep}{listing}")
    assert set(weights.registered_weights()) == {"toy", "other"}
    with open(weights.get_weights("other", verbose=False), "rb") as stream:
        assert stream.read() == data
    # Entries registered in code take precedence over the file.
    weights.register_weights("toy", "https://example.org/x", "c" * 64)
    assert weights.registered_weights()["toy"]["url"] == "https://example.org/x"


def test_invalid_registry_file(tmp_path, monkeypatch):
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", str(path))
    with pytest.raises(ValueError, match="ANYSMA_WEIGHTS_REGISTRY"):
        weights.get_weights("toy")
    path.write_text(json.dumps({"toy": {"url": "https://example.org/a"}}))
    with pytest.raises(ValueError, match="sha256"):
        weights.get_weights("toy")


def test_export_then_load(tmp_path, monkeypatch):
    model = small_model(seed=1)
    path = tmp_path / "out" / "toy.weights.h5"
    entry = weights.export_weights(model, str(path), url=None, experiment="toy_exp")
    with open(path, "rb") as stream:
        data = stream.read()
    assert entry["name"] == "toy" and entry["file"] == "toy.weights.h5"
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size"] == len(data)
    assert entry["experiment"] == "toy_exp"
    assert entry["backend"] == keras.backend.backend()
    with open(str(path) + ".json") as stream:
        assert json.load(stream) == entry
    assert sorted(os.listdir(path.parent)) == ["toy.weights.h5", "toy.weights.h5.json"]

    # The JSON entry works as a registry file; its weights load into a new model.
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", str(path) + ".json")
    other = small_model(seed=2)
    other.load_weights(weights.get_weights("toy", verbose=False))
    for left, right in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(left, right)


def test_export_requires_weights_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        weights.export_weights(small_model(0), str(tmp_path / "model.h5"))
    with pytest.raises(TypeError, match="Keras model"):
        weights.export_weights(object(), str(tmp_path / "a.weights.h5"))


def test_failed_export_leaves_nothing(tmp_path):
    class Broken:
        def save_weights(self, path):
            with open(path, "wb") as stream:
                stream.write(b"half")
            raise OSError("disk full")

    target = tmp_path / "out" / "toy.weights.h5"
    with pytest.raises(OSError, match="disk full"):
        weights.export_weights(Broken(), str(target))
    assert os.listdir(target.parent) == []


# --- Damaged weights files (reliability item 9) -------------------------------


def test_damaged_weights_file_names_its_path(tmp_path):
    from anysma.datasets import DamagedFileError

    path = tmp_path / "final.weights.h5"
    path.write_bytes(b"this is no HDF5 file" * 10)
    with pytest.raises(DamagedFileError) as info:
        weights.get_weights(str(path))
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(path) in message and "damaged" in message
    assert "file signature not found" in message
    assert "export_weights" in message  # how to get a good copy
    assert "\n" not in message


def test_truncated_weights_file(tmp_path):
    from anysma.datasets import DamagedFileError

    model = small_model(seed=3)
    path = tmp_path / "out" / "toy.weights.h5"
    weights.export_weights(model, str(path))
    assert weights.get_weights(str(path)) == str(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedFileError, match="toy.weights.h5"):
        weights.get_weights(str(path))


def test_damaged_keras_archive(tmp_path):
    from anysma.datasets import DamagedFileError

    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 but nothing else")
    with pytest.raises(DamagedFileError, match="model.keras"):
        weights.get_weights(str(path))


def test_published_file_that_is_no_weights_file(tmp_path):
    from anysma.datasets import DamagedFileError

    source, digest = published_file(tmp_path, b"not weights")
    weights.register_weights("toy", source.as_uri(), digest)
    with pytest.raises(DamagedFileError, match=r"get_weights\('toy'\)"):
        weights.get_weights("toy", verbose=False)


def test_check_weights_file_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        weights.check_weights_file(str(tmp_path / "none.weights.h5"))


# --- https only, names are names, files stay in their folder (item 12) --------


def test_plain_http_urls_are_refused(tmp_path):
    with pytest.raises(ValueError, match="https"):
        weights.register_weights("toy", "http://example.org/w.weights.h5", "a" * 64)
    target = tmp_path / "unused.weights.h5"
    with pytest.raises(ValueError, match="https"):
        weights.export_weights(small_model(0), str(target), url="http://example.org/x")
    assert not target.exists()


def test_plain_http_url_in_a_registry_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "registry.json"
    entry = {"url": "http://example.org/w.weights.h5", "sha256": "a" * 64}
    path.write_text(json.dumps({"toy": entry}))
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", str(path))
    with pytest.raises(
        ValueError, match=r"https.*registry\.json|registry\.json.*https"
    ):
        weights.registered_weights()


@pytest.mark.parametrize(
    "file_name", ["../outside.weights.h5", "sub/w.weights.h5", "/abs.weights.h5", ".."]
)
def test_registry_file_entry_must_stay_in_its_folder(tmp_path, monkeypatch, file_name):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"toy": {"file": file_name, "sha256": "a" * 64}}))
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", str(path))
    with pytest.raises(ValueError, match="plain file name") as info:
        weights.registered_weights()
    assert str(path) in str(info.value) and repr(file_name) in str(info.value)


def test_registry_file_entry_next_to_the_json(tmp_path, monkeypatch):
    data = h5_bytes(tmp_path, b"next to it")
    (tmp_path / "w.weights.h5").write_bytes(data)
    path = tmp_path / "registry.json"
    digest = hashlib.sha256(data).hexdigest()
    path.write_text(json.dumps({"toy": {"file": "w.weights.h5", "sha256": digest}}))
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", str(path))
    with open(weights.get_weights("toy", verbose=False), "rb") as stream:
        assert stream.read() == data


def test_a_file_in_the_working_directory_does_not_shadow_a_registry_name(
    tmp_path, monkeypatch, isolated_registry
):
    data = h5_bytes(tmp_path, b"the registered weights")
    source, digest = published_file(tmp_path, data)
    weights.register_weights("toy", source.as_uri(), digest)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy").write_bytes(h5_bytes(tmp_path, b"an unverified file"))
    path = weights.get_weights("toy", verbose=False)
    assert path == str(isolated_registry / "toy.weights.h5")
    with open(path, "rb") as stream:
        assert stream.read() == data
    # The file is used when it is passed as a path.
    assert weights.get_weights("./toy") == "./toy"
    assert weights.get_weights(pathlib.Path("toy")) == "toy"


def test_a_bare_name_never_loads_a_file_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").write_bytes(h5_bytes(tmp_path, b"x"))
    with pytest.raises(ValueError, match=r"pass it as a path: '\./mine'"):
        weights.get_weights("mine")


@pytest.mark.parametrize(
    "value, is_path",
    [
        ("mnist", False),
        ("smallnorb48_el", False),
        ("final.weights.h5", True),
        ("model.keras", True),
        ("w.hdf5", True),
        ("./mnist", True),
        ("~/mnist", True),
        ("out/mnist", True),
        (pathlib.Path("mnist"), True),
    ],
)
def test_looks_like_path(value, is_path):
    assert weights.looks_like_path(value) is is_path


@pytest.mark.parametrize("name", ["w.h5", ".hidden", "~home", "a\\b", "x.keras"])
def test_registry_names_must_not_look_like_paths(name):
    with pytest.raises(ValueError, match="name"):
        weights.register_weights(name, "https://example.org/w.weights.h5", "a" * 64)

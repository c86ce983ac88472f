import hashlib
import json
import os

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
    path.write_bytes(b"x")
    assert weights.get_weights(str(path)) == str(path)


def test_missing_path():
    with pytest.raises(FileNotFoundError, match="nowhere.weights.h5"):
        weights.get_weights("nowhere.weights.h5")


def test_download_by_name(tmp_path, isolated_registry):
    source, digest = published_file(tmp_path, b"weights bytes")
    weights.register_weights("toy", source.as_uri(), digest, experiment="toy_exp")
    path = weights.get_weights("toy", verbose=False)
    assert path == str(isolated_registry / "toy.weights.h5")
    with open(path, "rb") as stream:
        assert stream.read() == b"weights bytes"
    # The verified copy is reused: the source may disappear.
    source.unlink()
    assert weights.get_weights("toy", verbose=False) == path


def test_cache_dir_argument(tmp_path):
    source, digest = published_file(tmp_path, b"abc")
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
    source, digest = published_file(tmp_path, b"new version")
    weights.register_weights("toy", source.as_uri(), digest)
    path = weights.get_weights("toy", verbose=False)
    with open(path, "rb") as stream:
        assert stream.read() == b"new version"


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
    source, digest = published_file(tmp_path, b"from json")
    mapping = tmp_path / "registry.json"
    mapping.write_text(json.dumps({"toy": {"url": source.as_uri(), "sha256": digest}}))
    listing = tmp_path / "listing.json"
    listing.write_text(
        json.dumps([{"name": "other", "url": source.as_uri(), "sha256": digest}])
    )
    monkeypatch.setenv("ANYSMA_WEIGHTS_REGISTRY", f"{mapping}{os.pathsep}{listing}")
    assert set(weights.registered_weights()) == {"toy", "other"}
    with open(weights.get_weights("other", verbose=False), "rb") as stream:
        assert stream.read() == b"from json"
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

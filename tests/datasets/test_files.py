import hashlib
import os
import pathlib

import numpy as np
import pytest

from anysma.datasets import DatasetNotFoundError
from anysma.datasets import _files
from anysma.datasets import mnist
from anysma.testing.datasets import write_mnist_idx


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def make_spec(tmp_path, payloads, distinctive=True):
    """A dataset whose 'remote' files are local files served by file:// URLs."""
    remote_folder = tmp_path / "remote"
    remote_folder.mkdir()
    remote_files = []
    for name, (data, published_sha256) in payloads.items():
        (remote_folder / name).write_bytes(data)
        url = (remote_folder / name).as_uri()
        remote_files.append(_files.RemoteFile(name, url, published_sha256, len(data)))
    return _files.DatasetSpec(
        name="toy",
        title="Toy data",
        source="https://example.org/toy",
        remote_files=tuple(remote_files),
        layouts=(_files.Layout(tuple((name,) for name in payloads), distinctive),),
    )


def test_download_file_url_keeps_file_with_matching_hash(tmp_path):
    data = b"prototype " * 1000
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    target = tmp_path / "cache" / "copy.bin"
    result = _files.download(
        source.as_uri(), str(target), sha256_of(data), verbose=False
    )
    assert result == str(target)
    assert target.read_bytes() == data
    # Only the final file is left: no temporary file.
    assert os.listdir(target.parent) == ["copy.bin"]


def test_download_hash_mismatch_raises_and_removes_the_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"corrupted bytes")
    expected = sha256_of(b"the real bytes")
    target = tmp_path / "cache" / "copy.bin"
    with pytest.raises(ValueError) as info:
        _files.download(source.as_uri(), str(target), expected, verbose=False)
    message = str(info.value)
    assert str(target) in message
    assert expected in message
    assert sha256_of(b"corrupted bytes") in message
    assert os.listdir(target.parent) == []


def test_download_hash_mismatch_keeps_an_existing_good_file(tmp_path):
    target = tmp_path / "copy.bin"
    target.write_bytes(b"good")
    source = tmp_path / "source.bin"
    source.write_bytes(b"bad")
    with pytest.raises(ValueError):
        _files.download(source.as_uri(), str(target), sha256_of(b"good"), verbose=False)
    assert target.read_bytes() == b"good"
    assert sorted(os.listdir(tmp_path)) == ["copy.bin", "source.bin"]


def test_download_unreachable_url_raises_download_error(tmp_path):
    missing = (tmp_path / "nowhere.bin").as_uri()
    target = tmp_path / "cache" / "copy.bin"
    with pytest.raises(_files.DownloadError, match="nowhere.bin"):
        _files.download(missing, str(target), "0" * 64, verbose=False)
    assert os.listdir(target.parent) == []


def test_download_progress_bar(tmp_path, capsys):
    data = bytes(range(256)) * 64
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    target = tmp_path / "copy.bin"
    _files.download(source.as_uri(), str(target), sha256_of(data), verbose=True)
    captured = capsys.readouterr()
    assert source.as_uri() in captured.err
    assert target.read_bytes() == data


@pytest.mark.parametrize("value", ["abc", "g" * 64, 12, None])
def test_check_sha256_rejects_bad_digests(value):
    with pytest.raises(ValueError, match="sha256"):
        _files.check_sha256(value)


def test_check_sha256_lowercases():
    assert _files.check_sha256("AB" * 32) == "ab" * 32


def test_fetch_downloads_missing_files_into_the_cache(tmp_path, isolated_data_folders):
    payloads = {
        "a.bin": (b"first", sha256_of(b"first")),
        "b.bin": (b"2nd", sha256_of(b"2nd")),
    }
    spec = make_spec(tmp_path, payloads)
    layout_index, paths = _files.fetch(spec, download_missing=True, verbose=False)
    assert layout_index == 0
    expected_folder = isolated_data_folders / "datasets" / "toy"
    assert paths == [str(expected_folder / "a.bin"), str(expected_folder / "b.bin")]
    assert (expected_folder / "b.bin").read_bytes() == b"2nd"
    # The second call finds the cached files (the remote copy is gone).
    (tmp_path / "remote" / "a.bin").unlink()
    assert _files.fetch(spec, download_missing=True, verbose=False)[1] == paths


def test_fetch_with_corrupted_download_raises_and_leaves_nothing(
    tmp_path, isolated_data_folders
):
    spec = make_spec(tmp_path, {"a.bin": (b"tampered", sha256_of(b"original"))})
    with pytest.raises(ValueError, match=sha256_of(b"original")):
        _files.fetch(spec, download_missing=True, verbose=False)
    assert os.listdir(isolated_data_folders / "datasets" / "toy") == []


def test_fetch_without_download_raises_a_helpful_error(tmp_path, isolated_data_folders):
    spec = make_spec(tmp_path, {"a.bin": (b"x", sha256_of(b"x"))})
    user_folder = tmp_path / "mine"
    with pytest.raises(DatasetNotFoundError) as info:
        _files.fetch(spec, data_dir=str(user_folder), download_missing=False)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert "a.bin" in message
    assert spec.remote_files[0].url in message
    assert str(user_folder) in message
    assert str(isolated_data_folders / "datasets" / "toy") in message
    assert "ANYSMA_DATA_DIR" in message
    assert "download=False" in message
    assert "\n" not in message
    assert not (isolated_data_folders / "datasets" / "toy").exists()


def test_fetch_reports_failed_download(tmp_path):
    spec = make_spec(tmp_path, {"a.bin": (b"x", sha256_of(b"x"))})
    (tmp_path / "remote" / "a.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="Downloading failed"):
        _files.fetch(spec, download_missing=True, verbose=False)


def test_search_order_data_dir_then_environment_then_cache(
    tmp_path, monkeypatch, isolated_data_folders
):
    spec = make_spec(tmp_path, {"a.bin": (b"x", sha256_of(b"x"))})
    explicit, env_first, env_second = (
        tmp_path / name for name in ("explicit", "env1", "env2")
    )
    cache = isolated_data_folders / "datasets" / "toy"
    for folder in (explicit, env_second, cache):
        folder.mkdir(parents=True)
        (folder / "a.bin").write_bytes(b"x")
    env_first.mkdir()
    monkeypatch.setenv(
        "ANYSMA_DATA_DIR", os.pathsep.join([str(env_first), str(env_second)])
    )

    def location(data_dir=None):
        return _files.find(spec, data_dir)[1]

    assert location(str(explicit)) == str(explicit)
    assert location() == str(env_second)
    (env_second / "a.bin").unlink()
    assert location() == str(cache)
    # A list of folders is searched in order, before the environment.
    assert location([str(tmp_path / "empty"), str(explicit)]) == str(explicit)


def test_subfolder_named_after_the_dataset_is_found(tmp_path):
    spec = make_spec(tmp_path, {"a.bin": (b"x", sha256_of(b"x"))})
    (tmp_path / "root" / "toy").mkdir(parents=True)
    (tmp_path / "root" / "toy" / "a.bin").write_bytes(b"x")
    assert _files.find(spec, str(tmp_path / "root"))[1] == str(
        tmp_path / "root" / "toy"
    )


def test_generic_names_need_the_subfolder_in_shared_folders(tmp_path, monkeypatch):
    spec = make_spec(tmp_path, {"a.bin": (b"x", sha256_of(b"x"))}, distinctive=False)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.bin").write_bytes(b"x")
    monkeypatch.setenv("ANYSMA_DATA_DIR", str(shared))
    assert _files.find(spec) is None
    # ... but a folder given as data_dir is trusted.
    assert _files.find(spec, str(shared))[1] == str(shared)
    (shared / "toy").mkdir()
    (shared / "toy" / "a.bin").write_bytes(b"x")
    assert _files.find(spec)[1] == str(shared / "toy")


def test_mnist_in_shared_folder_is_not_taken_for_fashion_mnist(tmp_path, monkeypatch):
    from anysma.datasets import fashion_mnist

    write_mnist_idx(str(tmp_path), num_train=10, num_test=10)
    monkeypatch.setenv("ANYSMA_DATA_DIR", str(tmp_path))
    assert mnist.load_data(download=False)[0][0].shape == (10, 28, 28)
    with pytest.raises(DatasetNotFoundError, match="fashion_mnist"):
        fashion_mnist.load_data(download=False)
    # IDX files lying directly in a shared folder are ambiguous: neither takes them.
    monkeypatch.setenv("ANYSMA_DATA_DIR", str(tmp_path / "mnist"))
    for module in (mnist, fashion_mnist):
        with pytest.raises(DatasetNotFoundError):
            module.load_data(download=False)


def test_data_dir_must_be_paths():
    with pytest.raises(TypeError, match="data_dir"):
        _files.search_roots(data_dir=[3])


def test_cache_dir_default_and_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("ANYSMA_CACHE_DIR")
    default = os.path.join(os.path.expanduser("~"), ".anysma", "datasets")
    assert _files.cache_dir() == default
    monkeypatch.setenv("ANYSMA_CACHE_DIR", str(tmp_path))
    assert _files.cache_dir("weights") == str(tmp_path / "weights")


def test_read_npz_names_missing_keys(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=np.zeros(3))
    with pytest.raises(ValueError, match="y_train"):
        _files.read_npz(str(path), ("x_train", "y_train"))


def test_file_sha256(tmp_path):
    path = pathlib.Path(tmp_path) / "f.bin"
    data = os.urandom(3 * (1 << 20) + 5)  # spans several read chunks
    path.write_bytes(data)
    assert _files.file_sha256(str(path)) == hashlib.sha256(data).hexdigest()

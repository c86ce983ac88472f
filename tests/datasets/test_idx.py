import gzip

import numpy as np
import pytest

from anysma.datasets._idx import parse_idx
from anysma.datasets._idx import read_idx

# A 2×3 uint8 matrix: magic 00 00 08 02, sizes 2 and 3 (big-endian), values.
UINT8_MATRIX = bytes.fromhex("00000802 00000002 00000003 010203040506")
# Three big-endian int32 values: 1, -2, 0x01020304.
INT32_VECTOR = bytes.fromhex("00000C01 00000003 00000001 FFFFFFFE 01020304")


def test_parse_uint8_matrix():
    values = parse_idx(UINT8_MATRIX)
    assert values.dtype == np.uint8
    np.testing.assert_array_equal(values, [[1, 2, 3], [4, 5, 6]])


def test_parse_big_endian_int32():
    values = parse_idx(INT32_VECTOR)
    assert values.dtype == np.int32
    assert values.dtype.isnative
    np.testing.assert_array_equal(values, [1, -2, 16909060])


def test_parse_float32():
    data = bytes.fromhex("00000D01 00000002 3FC00000 C0200000")  # 1.5, -2.5
    np.testing.assert_array_equal(parse_idx(data), np.float32([1.5, -2.5]))


def test_bad_magic_number():
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(b"\x01" + UINT8_MATRIX[1:])


def test_unknown_type_code():
    with pytest.raises(ValueError, match="0x07"):
        parse_idx(b"\x00\x00\x07" + UINT8_MATRIX[3:])


def test_truncated_header_and_data():
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(UINT8_MATRIX[:6])
    with pytest.raises(ValueError, match=r"truncated.*needs 18 bytes, the data has 17"):
        parse_idx(UINT8_MATRIX[:-1])


def test_trailing_data():
    with pytest.raises(ValueError, match="longer than its header says"):
        parse_idx(UINT8_MATRIX + b"\x00")


def test_read_gzipped_and_plain_files(tmp_path):
    plain = tmp_path / "values-idx2-ubyte"
    plain.write_bytes(UINT8_MATRIX)
    packed = tmp_path / "values-idx2-ubyte.gz"
    packed.write_bytes(gzip.compress(UINT8_MATRIX))
    np.testing.assert_array_equal(read_idx(str(plain)), read_idx(str(packed)))
    assert read_idx(str(packed)).shape == (2, 3)


def test_damaged_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(UINT8_MATRIX)[:-6])
    with pytest.raises(ValueError, match="broken.gz"):
        read_idx(str(path))

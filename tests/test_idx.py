import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rowlstm.idx import IdxError, parse_idx, read_images, read_labels
from tests.helpers import encode_idx


def test_round_trip_images_and_labels(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([0, 9, 4], dtype=np.uint8)
    (tmp_path / "images").write_bytes(encode_idx(images))
    (tmp_path / "labels").write_bytes(encode_idx(labels))
    np.testing.assert_array_equal(read_images(tmp_path / "images"), images)
    np.testing.assert_array_equal(read_labels(tmp_path / "labels"), labels)


def test_header_is_big_endian_with_mnist_magic() -> None:
    data = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))
    assert data[:4] == bytes([0, 0, 0x08, 3])
    assert struct.unpack(">3I", data[4:16]) == (2, 28, 28)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x00", "bad magic number"),
        (b"\x00\x00\x0d\x01" + b"\x00\x00\x00\x00", "element type 0x0d unsupported"),
        (b"\x00\x00\x08\x00", "0 dimensions declared"),
        (b"\x00\x00\x08\x04" + b"\x00" * 16, "4 dimensions declared"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x01", "header cut short"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05" + b"\x01\x02", "declares 5 = 5 bytes but 2 follow"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01" + b"\x01\x02", "declares 1 = 1 bytes but 2 follow"),
    ],
)
def test_corrupt_bytes_give_a_format_error_naming_the_file(data: bytes, message: str) -> None:
    with pytest.raises(IdxError, match=message) as caught:
        parse_idx(data, "some/file")
    assert str(caught.value).startswith("some/file: ")


def test_lying_header_is_refused_without_allocating() -> None:
    huge = b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**31, 2**31) + b"\x00" * 10
    with pytest.raises(IdxError, match="but 10 follow"):
        parse_idx(huge, "lie")


def test_labels_outside_0_to_9_are_refused(tmp_path: Path) -> None:
    (tmp_path / "labels").write_bytes(encode_idx(np.array([1, 2, 10, 3], dtype=np.uint8)))
    with pytest.raises(IdxError, match=r"label 10 at index 2 is not a digit 0\.\.9"):
        read_labels(tmp_path / "labels")


def test_images_must_be_28_by_28(tmp_path: Path) -> None:
    (tmp_path / "images").write_bytes(encode_idx(np.zeros((2, 27, 28), dtype=np.uint8)))
    with pytest.raises(IdxError, match=r"expected N x 28 x 28 images, got shape \(2, 27, 28\)"):
        read_images(tmp_path / "images")


def test_labels_must_be_one_dimensional(tmp_path: Path) -> None:
    (tmp_path / "labels").write_bytes(encode_idx(np.zeros((2, 28, 28), dtype=np.uint8)))
    with pytest.raises(IdxError, match="1-dimensional"):
        read_labels(tmp_path / "labels")


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(IdxError, match="cannot read"):
        read_images(tmp_path / "absent")


def test_a_header_whose_sizes_wrap_around_64_bits_is_refused() -> None:
    wraps = b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**31, 4)  # product 2**64
    with pytest.raises(IdxError, match="declares 2147483648x2147483648x4"):
        parse_idx(wraps, "wrap")


def accepted_or_idx_error(data: bytes) -> None:
    """Any bytes: a uint8 array exactly as large as the input allows, or our IdxError."""
    try:
        array = parse_idx(data, "fuzz")
    except IdxError as error:
        message = str(error)
    else:
        assert array.dtype == np.uint8
        assert array.nbytes == len(data) - 4 - 4 * array.ndim
        return
    assert message.startswith("fuzz: ")


@given(st.binary(max_size=600))
@settings(max_examples=400, deadline=None)
def test_fuzzed_bytes_never_escape_as_another_exception(data: bytes) -> None:
    accepted_or_idx_error(data)


@given(
    ndim=st.integers(0, 5),
    dims=st.lists(
        st.integers(0, 2**32 - 1) | st.integers(0, 30) | st.sampled_from([2**16, 2**31]),
        min_size=5,
        max_size=5,
    ),
    body=st.binary(max_size=400),
    dtype=st.sampled_from([0x08, 0x08, 0x09, 0x0B, 0x0D]),
)
@settings(max_examples=400, deadline=None)
def test_fuzzed_headers_never_allocate_more_than_the_input(ndim, dims, body, dtype) -> None:
    header = struct.pack(">HBB", 0, dtype, ndim) + struct.pack(f">{ndim}I", *dims[:ndim])
    accepted_or_idx_error(header + body)


@given(st.binary(max_size=300), st.sampled_from([read_images, read_labels]))
@settings(max_examples=100, deadline=None)
def test_fuzzed_files_give_idx_errors_through_the_readers(tmp_path_factory, data, reader) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "file"
    path.write_bytes(data)
    try:
        array = reader(path)
    except IdxError as error:
        message = str(error)
    else:
        assert array.shape[1:] in {(), (28, 28)}
        return
    assert message.startswith(f"{path}: ")

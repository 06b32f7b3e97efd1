"""Tests of the .fbz container: exact round trips, corruption of every kind, paths, atomic writes."""
import hashlib
import json
import math
import os
import random
import struct
import tempfile
import types
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from akida_core import fbz
from akida_core.errors import ModelFormatError, VersionError

from ..workload import steps

SMALL_TREE = {
    "name": "tiny",
    "layers": [
        {"kind": "conv", "weights": np.arange(-12, 12, dtype=np.int8).reshape(2, 3, 4),
         "threshold": np.array([3, -7], dtype=np.int32), "scale": 0.5, "learn": None},
        {"kind": "fc", "flag": True, "empty": np.zeros((0, 5), dtype=np.float32),
         "scalar": np.array(7, dtype=np.int64), "mask": np.array([True, False, True])},
    ],
}


def pack(header, data=b"", version=1, flags=0, header_length=None, data_length=None):
    """Build a .fbz file by hand (independently of fbz.dumps) with a correct checksum."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    data += b"\0" * (-len(data) % 8)
    body = struct.pack("<8sIIQQ", fbz.MAGIC, version, flags,
                       len(raw) if header_length is None else header_length,
                       len(data) if data_length is None else data_length) + raw + data
    return body + hashlib.sha256(body).digest()


def split(blob):
    """Return (header dict, data bytes) of a valid file."""
    header_length, data_length = struct.unpack_from("<QQ", blob, 16)
    header = json.loads(blob[32:32 + header_length])
    return header, blob[32 + header_length:32 + header_length + data_length]


def assert_same(expected, actual, path="/"):
    """Equal values with equal types; arrays bit-identical, C-contiguous and writeable."""
    assert type(expected) is type(actual), path
    if isinstance(expected, dict):
        assert list(expected) == list(actual), path
        for key in expected:
            assert_same(expected[key], actual[key], f"{path}{key}/")
    elif isinstance(expected, list):
        assert len(expected) == len(actual), path
        for index, (a, b) in enumerate(zip(expected, actual)):
            assert_same(a, b, f"{path}{index}/")
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, path
        assert actual.dtype.isnative and actual.flags.c_contiguous and actual.flags.writeable
        assert np.ascontiguousarray(expected).tobytes() == actual.tobytes(), path
    elif isinstance(expected, float):
        assert repr(expected) == repr(actual), path  # keeps -0.0 apart from 0.0
    else:
        assert expected == actual, path


# ---- round trips -------------------------------------------------------------------------------

arrays = hnp.arrays(dtype=st.sampled_from(fbz.DTYPES).map(np.dtype),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8) | arrays)
keys = st.text(max_size=6).filter(lambda key: key != fbz.TENSOR_KEY)
trees = st.dictionaries(keys, st.recursive(
    leaves, lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children,
                                                                              max_size=3),
    max_leaves=12), max_size=4)


@settings(max_examples=200)
@given(trees)
def test_round_trip_is_exact(tree):
    blob = fbz.dumps(tree)
    assert_same(tree, fbz.loads(blob))
    assert fbz.dumps(fbz.loads(blob)) == blob  # canonical: re-encoding gives the same bytes


@settings(max_examples=15)
@given(trees)
def test_round_trip_through_disk_is_exact(tree):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "tree.fbz")
        fbz.write(path, tree)
        assert_same(tree, fbz.read(path))
        assert os.listdir(directory) == ["tree.fbz"]


def test_round_trip_on_disk_and_known_layout(tmp_path):
    path = tmp_path / "model.fbz"
    fbz.write(path, SMALL_TREE)
    blob = path.read_bytes()
    assert_same(SMALL_TREE, fbz.read(path))
    assert_same(SMALL_TREE, fbz.read(str(path)))
    magic, version, flags, header_length, data_length = struct.unpack_from("<8sIIQQ", blob)
    assert (magic, version, flags) == (b"\x89FBZ\r\n\x1a\n", 1, 0)
    assert header_length % 8 == 0 and data_length % 8 == 0
    assert len(blob) == 32 + header_length + data_length + 32
    assert blob[-32:] == hashlib.sha256(blob[:-32]).digest()
    header, data = split(blob)
    weights = header["tensors"][0]
    assert weights == {"name": "/layers/0/weights", "dtype": "int8", "shape": [2, 3, 4],
                       "offset": 0, "length": 24}
    assert data[:24] == np.arange(-12, 12, dtype=np.int8).tobytes()
    assert header["tree"]["layers"][0]["weights"] == {fbz.TENSOR_KEY: "/layers/0/weights"}
    assert all(entry["offset"] % 8 == 0 for entry in header["tensors"])


def test_special_values_round_trip():
    tree = {"nan": np.array([np.nan, np.inf, -np.inf, -0.0]), "big": 2**100, "neg0": -0.0,
            "be": np.arange(4, dtype=">i4"), "fortran": np.asfortranarray(np.eye(3, dtype=np.int16)),
            "slice": np.arange(20, dtype=np.uint16)[::3], "k/~": [1, 1.0, True, "é\u20ac"]}
    out = fbz.loads(fbz.dumps(tree))
    assert out["nan"].tobytes() == tree["nan"].tobytes()
    assert out["be"].dtype == np.dtype("int32") and out["be"].tolist() == [0, 1, 2, 3]
    assert out["fortran"].flags.c_contiguous and (out["fortran"] == np.eye(3)).all()
    assert out["slice"].tolist() == list(range(0, 20, 3))
    assert [type(v) for v in out["k/~"]] == [int, float, bool, str]
    assert out["big"] == 2**100 and math.copysign(1, out["neg0"]) == -1


def test_loaded_arrays_are_independent_copies():
    blob = bytearray(fbz.dumps(SMALL_TREE))
    tree = fbz.loads(blob)
    blob[200:] = bytes(len(blob) - 200)
    tree["layers"][0]["weights"][0, 0, 0] = 99
    assert tree["layers"][0]["threshold"].tolist() == [3, -7]


@pytest.mark.parametrize("tree, fragment", [
    ({"x": float("nan")}, "finite floats"),
    ({"x": [float("inf")]}, "/x/0"),
    ({"x": np.float32(1.0)}, "numpy scalars"),
    ({"x": (1, 2)}, "tuple"),
    ({1: "a"}, "keys must be str"),
    ({"a": {fbz.TENSOR_KEY: "t"}}, "reserved"),
    ({"x": np.array(["a"], dtype=object)}, "dtype object"),
    ({"x": np.zeros(2, np.float16)}, "float16"),
    ({"x": np.zeros(2, np.complex64)}, "complex64"),
    ({"x": np.ma.masked_array([1, 2])}, "MaskedArray"),
    ({"x": {1}}, "set"),
    ({"x": np.zeros((0, 2**33), np.int8)}, "spans more"),
    ([1, 2], "root must be a dict"),
])
def test_dumps_rejects_what_it_cannot_store(tree, fragment):
    with pytest.raises(fbz.UnsupportedTree, match=None) as info:
        fbz.dumps(tree)
    assert fragment in str(info.value)


def test_dumps_rejects_too_deep_tree():
    tree = node = {}
    for _ in range(fbz.MAX_DEPTH + 1):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(fbz.UnsupportedTree, match="deeper than"):
        fbz.dumps(tree)


# ---- corruption --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def blob():
    return fbz.dumps(SMALL_TREE)


def test_every_truncation_is_rejected(blob):
    for size in range(len(blob)):
        with pytest.raises(ModelFormatError):
            fbz.loads(blob[:size])
    with pytest.raises(fbz.Truncated, match="0 bytes"):
        fbz.loads(b"")
    with pytest.raises(fbz.Truncated, match="missing"):
        fbz.loads(blob[:-1])


def test_every_byte_flip_is_rejected(blob):
    for position in range(len(blob)):
        for mask in (0x01, 0x80, 0xFF):
            corrupted = bytearray(blob)
            corrupted[position] ^= mask
            with pytest.raises(ModelFormatError):
                fbz.loads(bytes(corrupted))


def test_random_mutations_raise_only_model_format_errors(blob):
    rng = random.Random(1234)
    header_end = 32 + struct.unpack_from("<Q", blob, 16)[0]
    for trial in range(5000):
        corrupted = bytearray(blob)
        for position in rng.sample(range(len(corrupted)), rng.randint(1, 8)):
            corrupted[position] ^= rng.randrange(1, 256)  # always a change
        if trial % 2:  # recompute the checksum so the parser and validators are what is tested
            corrupted[rng.randrange(32, header_end)] = rng.choice(b'{}[]",:-0123456789eEtn ')
            corrupted[-32:] = hashlib.sha256(corrupted[:-32]).digest()
            try:
                fbz.loads(bytes(corrupted))
            except ModelFormatError:
                pass
        else:
            with pytest.raises(ModelFormatError):
                fbz.loads(bytes(corrupted))


def test_structured_header_fuzz_reaches_deep_validators(blob):
    header, data = split(blob)
    pool = [-1, 0, 1, 3, 8, 24, 2**31, 2**64, 2**200, 1.5, True, None, "int8", "object", "",
            "/layers/0/weights", [], [3], [2**40, 2**40], [0, 7], [0, 2**63], [7, 0, 2**40], {}, {fbz.TENSOR_KEY: "x"}]
    rng, seen = random.Random(99), set()
    for _ in range(1500):
        tampered = json.loads(json.dumps(header))
        for _ in range(rng.randint(1, 3)):
            entry = rng.choice(tampered["tensors"])
            if rng.random() < 0.8:
                entry[rng.choice(["name", "dtype", "shape", "offset", "length"])] = rng.choice(pool)
            else:
                tampered["tree"][rng.choice(["name", "layers", "extra"])] = rng.choice(pool)
        try:
            fbz.loads(pack(tampered, data))
        except ModelFormatError as err:
            seen.add(type(err).__name__)
    assert {"InvalidTensorInfo", "InvalidOffset", "InvalidReference"} <= seen


def test_appended_bytes_are_rejected(blob):
    with pytest.raises(fbz.TrailingBytes, match="3 unexpected trailing bytes"):
        fbz.loads(blob + b"abc")


@pytest.mark.parametrize("make, error, fragment", [
    (lambda b: b"\x89HDF\r\n\x1a\n" + b[8:], fbz.NotAnFbzFile, "HDF5"),
    (lambda b: b"PK\x03\x04" + b[4:], fbz.NotAnFbzFile, "zip"),
    (lambda b: b"\x89PNG\r\n\x1a\n" + b[8:], fbz.NotAnFbzFile, "PNG"),
    (lambda b: b"\x80\x04\x95" + b[3:], fbz.NotAnFbzFile, "pickle"),
    (lambda b: b"GIF89a" + b[6:], fbz.NotAnFbzFile, "expected"),
    (lambda b: b[:5], fbz.Truncated, "inside the magic"),
    (lambda b: b[:10], fbz.Truncated, "format version"),
    (lambda b: b[:20], fbz.Truncated, "preamble"),
    (lambda b: b[:8] + struct.pack("<I", 0) + b[12:], fbz.InvalidHeader, "version 0"),
    (lambda b: b[:12] + struct.pack("<I", 1) + b[16:], fbz.InvalidHeader, "flags"),
    (lambda b: b[:16] + struct.pack("<Q", 2**64 - 1) + b[24:], fbz.HeaderTooLarge, "cap"),
    (lambda b: b[:16] + struct.pack("<Q", 2**24 + 8) + b[24:], fbz.HeaderTooLarge, "cap"),
    (lambda b: b[:24] + struct.pack("<Q", 2**62) + b[32:], fbz.FileTooLarge, "data length"),
    (lambda b: b[:16] + struct.pack("<Q", 2**20) + b[24:], fbz.Truncated, "missing"),
    (lambda b: b[:16] + struct.pack("<Q", 12) + b[24:], fbz.InvalidHeader, "multiple of 8"),
    (lambda b: b[:-32] + bytes(32), fbz.ChecksumMismatch, "checksum"),
    (lambda b: b[:100] + bytes([b[100] ^ 4]) + b[101:], fbz.ChecksumMismatch, "corrupted"),
    (lambda b: 12345, fbz.NotAnFbzFile, "expected bytes"),
])
def test_preamble_problems(blob, make, error, fragment):
    with pytest.raises(error) as info:
        fbz.loads(make(blob))
    assert fragment in str(info.value)


def test_newer_version_with_valid_checksum_raises_version_error(blob):
    header, data = split(blob)
    with pytest.raises(VersionError, match=r"written by format v2; this build reads <= v1"):
        fbz.loads(pack(header, data, version=2))
    with pytest.raises(VersionError, match="v4294967295"):
        fbz.loads(pack(header, data, version=2**32 - 1)[:12])


ONE = {"tensors": [{"name": "a", "dtype": "int32", "shape": [2], "offset": 0, "length": 8}],
       "tree": {"a": {fbz.TENSOR_KEY: "a"}}}


def tamper(edit):
    header = json.loads(json.dumps(ONE))
    edit(header)
    return header


def set_field(field, value, index=0):
    return lambda h: h["tensors"][index].__setitem__(field, value)


TWO = {"tensors": [{"name": "a", "dtype": "int32", "shape": [2], "offset": 0, "length": 8},
                   {"name": "b", "dtype": "int32", "shape": [2], "offset": 8, "length": 8}],
       "tree": {"a": {fbz.TENSOR_KEY: "a"}, "b": [{fbz.TENSOR_KEY: "b"}]}}


def tamper_two(edit):
    header = json.loads(json.dumps(TWO))
    edit(header)
    return header


@pytest.mark.parametrize("header, data, error, fragment", [
    (tamper(set_field("offset", -8)), bytes(8), fbz.InvalidOffset, "non-negative"),
    (tamper(set_field("offset", 8)), bytes(8), fbz.InvalidOffset, "outside"),
    (tamper(set_field("offset", 2**70)), bytes(8), fbz.InvalidOffset, "outside"),
    (tamper(set_field("offset", 4)), bytes(16), fbz.InvalidOffset, "multiple of 8"),
    (tamper(set_field("offset", 1.0)), bytes(8), fbz.InvalidOffset, "non-negative integer"),
    (tamper(set_field("offset", True)), bytes(8), fbz.InvalidOffset, "non-negative integer"),
    (tamper(set_field("length", 4)), bytes(8), fbz.InvalidTensorInfo, "implied by shape"),
    (tamper(set_field("length", -8)), bytes(8), fbz.InvalidOffset, "non-negative"),
    (tamper(set_field("shape", [2**40, 2**40])), bytes(8), fbz.InvalidTensorInfo,
     "spans more"),
    (tamper(set_field("shape", [3])), bytes(8), fbz.InvalidTensorInfo, "!= 12 bytes implied"),
    (tamper(set_field("shape", [2**64, 2**64, 0])), bytes(8), fbz.InvalidTensorInfo,
     "spans more"),
    (tamper(set_field("shape", [0, 2**63])), bytes(8), fbz.InvalidTensorInfo, "spans more"),
    (tamper(set_field("shape", [2**31, 2**31, 0, 5])), bytes(8), fbz.InvalidTensorInfo,
     "spans more"),
    (tamper(set_field("shape", [0, 2**4000])), bytes(8), fbz.InvalidTensorInfo, "spans more"),
    (tamper(set_field("shape", [-2, -1])), bytes(8), fbz.InvalidTensorInfo, "non-negative"),
    (tamper(set_field("shape", [True, 2])), bytes(8), fbz.InvalidTensorInfo, "non-negative"),
    (tamper(set_field("shape", [2.0])), bytes(8), fbz.InvalidTensorInfo, "non-negative"),
    (tamper(set_field("shape", "2")), bytes(8), fbz.InvalidTensorInfo, "shape must be"),
    (tamper(set_field("shape", [1] * 33)), bytes(8), fbz.InvalidTensorInfo, "at most 32"),
    (tamper(set_field("dtype", "object")), bytes(8), fbz.InvalidTensorInfo, "'object'"),
    (tamper(set_field("dtype", "<U2")), bytes(8), fbz.InvalidTensorInfo, "allowed"),
    (tamper(set_field("dtype", ["int32"])), bytes(8), fbz.InvalidTensorInfo, "allowed"),
    (tamper(set_field("name", "")), bytes(8), fbz.InvalidTensorInfo, "non-empty"),
    (tamper(set_field("name", 3)), bytes(8), fbz.InvalidTensorInfo, "non-empty"),
    (tamper(lambda h: h["tensors"][0].pop("length")), bytes(8), fbz.InvalidTensorInfo, "keys"),
    (tamper(set_field("extra", 1)), bytes(8), fbz.InvalidTensorInfo, "keys"),
    (tamper(lambda h: h["tensors"].__setitem__(0, [1])), bytes(8), fbz.InvalidTensorInfo,
     "keys"),
    (tamper(lambda h: h["tensors"].append(dict(h["tensors"][0], offset=8))), bytes(16),
     fbz.InvalidTensorInfo, "duplicate tensor name 'a'"),
    (tamper(lambda h: h["tree"].__setitem__("a", {fbz.TENSOR_KEY: "zz"})), bytes(8),
     fbz.InvalidReference, "'zz'"),
    (tamper(lambda h: h["tree"].__setitem__("b", {fbz.TENSOR_KEY: "a"})), bytes(8),
     fbz.InvalidReference, "already referenced"),
    (tamper(lambda h: h["tree"].pop("a")), bytes(8), fbz.InvalidReference, "never referenced"),
    (tamper(lambda h: h["tree"]["a"].__setitem__("x", 1)), bytes(8), fbz.InvalidReference,
     "must be"),
    (tamper(lambda h: h["tree"].__setitem__("a", {fbz.TENSOR_KEY: 0})), bytes(8),
     fbz.InvalidReference, "must be"),
    (tamper_two(set_field("offset", 0, 1)), bytes(16), fbz.InvalidOffset, "overlap"),
    (tamper_two(set_field("offset", 16, 1)), bytes(8) + b"\x05" + bytes(15), fbz.InvalidOffset,
     "[8, 16) of the data section are not zero"),
    (tamper_two(lambda h: h["tensors"][1].update(shape=[0], length=0, offset=24)), bytes(16),
     fbz.InvalidOffset, "outside"),
    (ONE, bytes(8) + b"\x01" + bytes(7), fbz.InvalidOffset, "not zero"),
    ({"tensors": [], "tree": {"a": 1}, "extra": 0}, b"", fbz.InvalidHeader, "keys"),
    ({"tensors": {}, "tree": {}}, b"", fbz.InvalidHeader, "must be a list"),
    ({"tensors": [], "tree": []}, b"", fbz.InvalidHeader, "must be a list"),
    ([1, 2], b"", fbz.InvalidHeader, "found list"),
    (b'{"tensors": [], "tree": {"x": NaN}}', b"", fbz.InvalidHeader, "NaN"),
    (b'{"tensors": [], "tree": {"x": 1e999}}', b"", fbz.InvalidHeader, "finite"),
    (b'{"tensors": [], "tree": {"x": 1, "x": 2}}', b"", fbz.InvalidHeader, "duplicate key"),
    (b'{"tensors": [], "tree": {"x": "\xff"}}', b"", fbz.InvalidHeader, "UTF-8"),
    (b'{"tensors": [], "tree": {', b"", fbz.InvalidHeader, "JSON"),
    (b'{"tensors": [], "tree": ' + b"[" * 100000 + b"]" * 100000 + b"}", b"",
     fbz.InvalidHeader, "JSON"),
    (b'{"tensors": [], "tree": {"x": ' + b"[" * 70 + b"]" * 70 + b"}}", b"",
     fbz.InvalidHeader, "deeper than"),
    (b'{"tensors": [], "tree": {"x": ' + b"9" * 5000 + b"}}", b"", fbz.InvalidHeader, "JSON"),
    (b"", b"", fbz.InvalidHeader, "JSON"),
])
def test_tampered_header_with_valid_checksum(header, data, error, fragment):
    with pytest.raises(error) as info:
        fbz.loads(pack(header, data))
    assert fragment in str(info.value)


class _CountedKey(str):
    """A header key that counts the equality tests made on it."""

    comparisons = 0
    __hash__ = str.__hash__

    def __eq__(self, other):
        _CountedKey.comparisons += 1
        return str.__eq__(self, other)


def _key_comparisons(monkeypatch, keys):
    """Key equality tests made while loading a header of `keys` keys whose last one repeats."""
    text = '{"tensors": [], "tree": {' + ",".join(f'"k{i}": 0' for i in range(keys)) + f', "k{keys - 1}": 1}}}}'
    real_loads = json.loads

    def loads(text, object_pairs_hook, **options):
        return real_loads(text, object_pairs_hook=lambda pairs: object_pairs_hook(
            [(_CountedKey(key), value) for key, value in pairs]), **options)

    monkeypatch.setattr(fbz, "json", types.SimpleNamespace(**{**vars(json), "loads": loads}))
    _CountedKey.comparisons = 0
    with pytest.raises(fbz.InvalidHeader, match=f"duplicate key 'k{keys - 1}'") as info:
        fbz.loads(pack(text.encode()))
    assert "not valid UTF-8 JSON" not in str(info.value)
    monkeypatch.undo()
    return _CountedKey.comparisons


def _resolve_work(lists):
    tree = {"nps": [[i, 1, 2, ["CNP1"]] for i in range(lists)], "x": {fbz.TENSOR_KEY: "x"}}
    blob = pack({"tensors": [{"name": "x", "dtype": "uint8", "shape": [1], "offset": 0, "length": 1}],
                 "tree": tree}, b"\x07")
    with steps() as work:
        loaded = fbz.loads(blob)
    assert loaded["nps"][-1] == [lists - 1, 1, 2, ["CNP1"]] and loaded["x"].tolist() == [7]
    return work


def test_big_headers_are_checked_in_linear_time(monkeypatch):
    # The duplicate search once compared every key with every other (40,000 keys: 29 s).
    assert _key_comparisons(monkeypatch, 10_000) <= 5 and _key_comparisons(monkeypatch, 40_000) <= 5
    # References are resolved in place: one call per list, none per plain leaf, linear in size.
    small, large = _resolve_work(5_000), _resolve_work(10_000)
    assert large.calls <= 2 * 10_000 + 100
    assert large.steps / small.steps < 2.1


def test_root_reference_and_deep_leaves():
    with pytest.raises(fbz.InvalidReference, match="root"):
        fbz.loads(pack({"tensors": [], "tree": {fbz.TENSOR_KEY: "x"}}))
    node = tree = {}
    for _ in range(fbz.MAX_DEPTH - 1):
        node["a"] = node = {}
    node["leaf"] = 1  # a leaf at depth MAX_DEPTH is fine, one level deeper is not
    assert fbz.loads(fbz.dumps(tree)) == tree
    node["leaf"] = [1]
    with pytest.raises(fbz.InvalidHeader, match=r"/a/leaf/0 is nested deeper than 64"):
        fbz.loads(pack({"tensors": [], "tree": tree}))


def test_bool_tensor_bytes_must_be_zero_or_one():
    header = {"tensors": [{"name": "m", "dtype": "bool", "shape": [2], "offset": 0,
                           "length": 2}], "tree": {"m": {fbz.TENSOR_KEY: "m"}}}
    assert fbz.loads(pack(header, b"\x01\x00"))["m"].tolist() == [True, False]
    with pytest.raises(fbz.InvalidTensorInfo, match="other than 0 and 1"):
        fbz.loads(pack(header, b"\x02\x00"))


def test_zero_size_tensors_may_share_an_offset():
    header = {"tensors": [{"name": n, "dtype": "float32", "shape": [0, 3], "offset": 8,
                           "length": 0} for n in "ab"]
              + [{"name": "c", "dtype": "uint8", "shape": [3], "offset": 0, "length": 3}],
              "tree": {"a": {fbz.TENSOR_KEY: "a"}, "b": [{fbz.TENSOR_KEY: "b"}],
                       "c": {fbz.TENSOR_KEY: "c"}}}
    out = fbz.loads(pack(header, b"\x01\x02\x03"))
    assert out["a"].shape == (0, 3) and out["b"][0].dtype == np.float32
    assert out["c"].tolist() == [1, 2, 3]


# ---- paths -------------------------------------------------------------------------------------

def test_path_problems(tmp_path):
    cases = [(tmp_path / "missing.fbz", fbz.FileAccessError, "No such file"),
             (tmp_path, fbz.FileAccessError, "directory")]
    empty = tmp_path / "empty.fbz"
    empty.write_bytes(b"")
    cases.append((empty, fbz.Truncated, "0 bytes"))
    fifo = tmp_path / "pipe.fbz"
    os.mkfifo(fifo)
    cases.append((fifo, fbz.FileAccessError, "not a regular file"))
    png = tmp_path / "image.fbz"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    cases.append((png, fbz.NotAnFbzFile, "PNG image, not .fbz"))
    archive = tmp_path / "model_keras.fbz"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("config.json", "{}")
    cases.append((archive, fbz.NotAnFbzFile, "zip file"))
    h5 = tmp_path / "model_h5.fbz"
    import h5py
    with h5py.File(h5, "w") as handle:
        handle.attrs["keras_version"] = "2.15"
    cases.append((h5, fbz.NotAnFbzFile, "HDF5 file"))
    cases.append((None, fbz.FileAccessError, "must be str"))
    for path, error, fragment in cases:
        with pytest.raises(error) as info:
            fbz.read(path)
        assert fragment in str(info.value), (path, str(info.value))
        if path is not None:
            assert os.path.basename(str(path)) in str(info.value)


def test_odd_paths(tmp_path):
    loop = tmp_path / "loop.fbz"
    os.symlink(loop, loop)
    odd = [(loop, "Too many levels of symbolic links"),
           (tmp_path / ("x" * 300 + ".fbz"), "File name too long"),
           (os.fsencode(tmp_path) + b"/caf\xe9.fbz", "No such file")]
    for path, fragment in odd:
        with pytest.raises(fbz.FileAccessError, match=fragment):
            fbz.read(path)
    fbz.write(os.fsencode(tmp_path) + b"/caf\xe9.fbz", SMALL_TREE)
    assert_same(SMALL_TREE, fbz.read(os.fsencode(tmp_path) + b"/caf\xe9.fbz"))
    for path in ("a\0b.fbz", b"a\0b.fbz", tmp_path / "x\0y.fbz"):
        with pytest.raises(fbz.FileAccessError, match="NUL byte"):
            fbz.read(path)
        with pytest.raises(fbz.WriteFailed, match="NUL byte"):
            fbz.write(path, SMALL_TREE)


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "model.fbz"
    fbz.write(path, SMALL_TREE)

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(fbz.FileAccessError, match="Permission denied"):
        fbz.read(path)


def test_file_larger_than_cap_is_refused_without_reading(tmp_path):
    path = tmp_path / "huge.fbz"
    with open(path, "wb") as handle:
        handle.truncate(fbz.MAX_FILE_BYTES + 1)  # sparse: costs no disk space
    with pytest.raises(fbz.FileTooLarge, match="limited to"):
        fbz.read(path)


# ---- atomic write ------------------------------------------------------------------------------

def _fail_after(monkeypatch, name, calls, error=OSError(28, "No space left on device")):
    original, count = getattr(os, name), [0]

    def flaky(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise error
        return original(*args, **kwargs)
    monkeypatch.setattr(os, name, flaky)


@pytest.mark.parametrize("name, calls, error", [
    ("write", 0, OSError(28, "No space left on device")),
    ("fsync", 0, OSError(5, "Input/output error")),
    ("replace", 0, OSError(18, "Invalid cross-device link")),
    ("fsync", 0, KeyboardInterrupt()),
])
def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, name, calls,
                                                        error):
    path = tmp_path / "model.fbz"
    fbz.write(path, {"old": 1})
    before = path.read_bytes()
    _fail_after(monkeypatch, name, calls, error)
    expected = fbz.WriteFailed if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        fbz.write(path, SMALL_TREE)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.fbz"]


def test_partial_os_write_is_completed(tmp_path, monkeypatch):
    original = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: original(fd, bytes(data)[:7]))
    fbz.write(tmp_path / "m.fbz", SMALL_TREE)
    monkeypatch.undo()
    assert_same(SMALL_TREE, fbz.read(tmp_path / "m.fbz"))


def test_write_errors(tmp_path):
    with pytest.raises(fbz.WriteFailed, match="does not exist; create it first"):
        fbz.write(tmp_path / "no" / "such" / "m.fbz", SMALL_TREE)
    assert not (tmp_path / "no").exists()
    with pytest.raises(fbz.WriteFailed, match="is a directory"):
        fbz.write(tmp_path, SMALL_TREE)
    with pytest.raises(fbz.WriteFailed, match="must be str"):
        fbz.write(42, SMALL_TREE)
    with pytest.raises(fbz.UnsupportedTree):
        fbz.write(tmp_path / "bad.fbz", {"x": object()})
    assert os.listdir(tmp_path) == []


def test_unwritable_directory(tmp_path, monkeypatch):
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(fbz.WriteFailed, match="cannot create a temp file.*Permission denied"):
        fbz.write(tmp_path / "m.fbz", SMALL_TREE)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_write_replaces_existing_file_with_normal_permissions(tmp_path):
    path = tmp_path / "model.fbz"
    fbz.write(path, {"old": 1})
    fbz.write(path, SMALL_TREE)
    assert_same(SMALL_TREE, fbz.read(path))
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["model.fbz"]

"""The program of a hardware sequence: a deterministic byte encoding of what the device would load.

Layout (all integers little-endian; docs/mapping.md has the same table):

* Header, 24 bytes: magic ``b"AKDP"``, u16 format version (1), u8 vendor_id, u8 product_id,
  u16 major_rev, u16 minor_rev, u16 layer count, u16 NP block count, u32 total size in bytes,
  u32 CRC-32 of every byte after the header.
* Per layer, a 44-byte record: u8 LayerType, u8 NPType of its NPs (255: none), u16 NP blocks,
  u32 x 3 input dims, u32 x 3 output dims, u8 kernel h, w, stride h, w, padding, pool type,
  pool h, w, pool stride h, w, weights_bits, act_bits, activation, input_bits, padding_value,
  name length; then the UTF-8 name padded to 4 bytes.
* Per NP of the layer, a 16-byte block header: u8 column, row, id, NPType, u32 first filter,
  u32 filter count, u32 weight bytes; then per filter an int32 threshold and the float32 act_step
  (bit-exact), then the weights packed at `weights_bits` (two's complement, least significant bit
  first, 1-bit weights as {0, 1}) and zero padding to 4 bytes. Weight order per NP: Convolutional
  and InputConvolutional (filter, kh, kw, cin); SeparableConvolutional the whole depthwise kernel
  (kh, kw, cin) then (filter, cin) pointwise; FullyConnected (unit, input) in Akida's column-major
  input order. An FNP2 block's weights are what goes to external memory.

`decode_program` reads it back (tests check every weight, threshold and act_step round-trips).
"""
import struct
import zlib

import numpy as np

from ..enums import LayerType
from ..errors import ModelFormatError

MAGIC = b"AKDP"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sHBBHHHHII")
_LAYER = struct.Struct("<BBH3I3I16B")
_BLOCK = struct.Struct("<BBBBIII")
_NO_NP = 255


def pack_bits(values, bits):
    """Pack integers into `bits`-bit fields, least significant bit first (two's complement)."""
    fields = np.asarray(values, np.int64).reshape(-1) & ((1 << bits) - 1)
    unpacked = ((fields[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return np.packbits(unpacked.reshape(-1), bitorder="little").tobytes()


def unpack_bits(data, count, bits, signed):
    """Inverse of `pack_bits`: `count` fields of `bits` bits, sign-extended when `signed`."""
    flat = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[:count * bits]
    values = (flat.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)
    if signed:
        values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    return values


def _pad4(data):
    return data + b"\0" * (-len(data) % 4)


def _weight_block(layer, start, stop):
    """The integer weights one NP holds for filters [start, stop), in the documented order."""
    values = layer._values
    if layer.layer_type == LayerType.FullyConnected:
        return values["weights"][0, 0, :, start:stop].T
    if layer.layer_type == LayerType.SeparableConvolutional:
        return np.concatenate([values["weights"][..., 0].reshape(-1),
                               values["weights_pw"][0, 0, :, start:stop].T.reshape(-1)])
    return np.moveaxis(values["weights"][..., start:stop], 3, 0)


def _layer_record(layer, np_type, blocks):
    p = layer.params
    pair = lambda name: tuple(max(v, 0) for v in getattr(p, name, (0, 0)))  # noqa: E731
    name = layer.name.encode("utf-8")[:255]
    fields = (*pair("kernel_size"), *pair("kernel_stride"), int(getattr(p, "padding", 0)),
              int(getattr(p, "pool_type", 0)), *pair("pool_size"), *pair("pool_stride"),
              getattr(p, "weights_bits", 0), getattr(p, "act_bits", 0), int(getattr(p, "activation", 0)),
              layer.input_bits or 0, getattr(p, "padding_value", 0), len(name))
    record = _LAYER.pack(int(layer.layer_type), _NO_NP if np_type is None else np_type.value, blocks,
                         *layer.input_dims, *layer.output_dims, *fields)
    return record + _pad4(name)


def encode_program(device, layers, allocation):
    """Encode one hardware sequence.

    Args:
        device: the Device (its hardware version goes in the header).
        layers: the sequence's layers, in order.
        allocation: layer name -> list of (NP, NPType, start, stop) (mapping_rules.allocate).

    Returns:
        The program bytes.
    """
    body = []
    n_blocks = 0
    for layer in layers:
        nps = allocation.get(layer.name, [])
        body.append(_layer_record(layer, nps[0][1] if nps else None, len(nps)))
        for np_, np_type, start, stop in nps:
            weights = pack_bits(_weight_block(layer, start, stop), layer.params.weights_bits)
            body.append(_BLOCK.pack(*np_.ident, np_type.value, start, stop - start, len(weights)))
            body.append(layer._values["threshold"][start:stop].astype("<i4").tobytes())
            body.append(layer._values["act_step"][start:stop].astype("<f4").tobytes())
            body.append(_pad4(weights))
            n_blocks += 1
    payload = b"".join(body)
    v = device.version
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, v.vendor_id, v.product_id, v.major_rev, v.minor_rev,
                          len(layers), n_blocks, _HEADER.size + len(payload), zlib.crc32(payload))
    return header + payload


def _weight_count(layer_type, kernel, dims_in, filters):
    kh, kw = kernel
    cin = dims_in[2]
    if layer_type == LayerType.FullyConnected:
        return filters * dims_in[0] * dims_in[1] * cin
    if layer_type == LayerType.SeparableConvolutional:
        return kh * kw * cin + filters * cin
    return filters * kh * kw * cin


def decode_program(data):
    """Decode a program into plain values (header, layers, NP blocks with unpacked weights).

    Raises:
        ModelFormatError: bad magic, version, size or checksum, or a truncated record.
    """
    try:
        magic, version, vendor, product, major, minor, n_layers, n_blocks, size, crc = _HEADER.unpack_from(data)
        if magic != MAGIC or version != FORMAT_VERSION or size != len(data):
            raise ModelFormatError(f"not an akida_core program v{FORMAT_VERSION} of {len(data)} bytes")
        if zlib.crc32(data[_HEADER.size:]) != crc:
            raise ModelFormatError("program checksum mismatch")
        offset, layers = _HEADER.size, []
        for _ in range(n_layers):
            entry, offset = _decode_layer(data, offset)
            layers.append(entry)
    except struct.error as err:
        raise ModelFormatError(f"truncated program: {err}") from err
    if offset != len(data) or sum(len(lay["nps"]) for lay in layers) != n_blocks:
        raise ModelFormatError("program layout does not match its header")
    return {"hw_version": (vendor, product, major, minor), "layers": layers}


def _decode_layer(data, offset):
    fields = _LAYER.unpack_from(data, offset)
    layer_type, np_type, n_nps = LayerType(fields[0]), fields[1], fields[2]
    dims_in, dims_out, small = fields[3:6], fields[6:9], fields[9:]
    offset += _LAYER.size
    name_len = small[15]
    name = data[offset:offset + name_len].decode("utf-8")
    offset += name_len + (-name_len % 4)
    entry = {"layer_type": layer_type, "name": name, "np_type": None if np_type == _NO_NP else np_type,
             "input_dims": dims_in, "output_dims": dims_out, "kernel_size": small[0:2],
             "kernel_stride": small[2:4], "padding": small[4], "pool_type": small[5], "pool_size": small[6:8],
             "pool_stride": small[8:10], "weights_bits": small[10], "act_bits": small[11],
             "activation": bool(small[12]), "input_bits": small[13], "padding_value": small[14], "nps": []}
    for _ in range(n_nps):
        col, row, ident, block_type, start, count, n_bytes = _BLOCK.unpack_from(data, offset)
        offset += _BLOCK.size
        threshold = np.frombuffer(data, "<i4", count, offset).astype(np.int32)
        offset += 4 * count
        act_step = np.frombuffer(data, "<f4", count, offset).astype(np.float32)
        offset += 4 * count
        bits = entry["weights_bits"]
        n_weights = _weight_count(layer_type, entry["kernel_size"], dims_in, count)
        if n_bytes != -(-n_weights * bits // 8) or offset + n_bytes > len(data):
            raise ModelFormatError(f"layer '{name}': NP block of {n_bytes} weight bytes, expected "
                                   f"{-(-n_weights * bits // 8)}")
        weights = unpack_bits(data[offset:offset + n_bytes], n_weights, bits, signed=bits > 1)
        offset += n_bytes + (-n_bytes % 4)
        entry["nps"].append({"ident": (col, row, ident), "np_type": block_type, "start": start, "count": count,
                             "threshold": threshold, "act_step": act_step, "weights": weights})
    return entry, offset

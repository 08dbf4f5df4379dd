"""Block codecs of Avro container files: null, deflate, bzip2, xz, snappy and zstandard.

Every decompressor is bounded (:data:`MAX_BLOCK_BYTES`) so that a corrupt or hostile
block cannot make genesis allocate gigabytes before failing.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable

from genesis.errors import ConfigError, DecodeError

#: No alert comes near this; a block that inflates beyond it is refused.
MAX_BLOCK_BYTES = 128 * 1024 * 1024


def _snappy_module() -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]] | None:
    try:
        import cramjam

        return (lambda b: bytes(cramjam.snappy.compress_raw(b)), lambda b: bytes(cramjam.snappy.decompress_raw(b)))
    except ImportError:
        pass
    try:
        import snappy

        return snappy.compress, snappy.decompress
    except ImportError:
        return None


def _bounded(decompressor, data: bytes, codec: str) -> bytes:
    out = decompressor.decompress(data, MAX_BLOCK_BYTES)
    if not decompressor.eof:
        if len(out) >= MAX_BLOCK_BYTES:
            raise DecodeError(f"{codec} block inflates beyond {MAX_BLOCK_BYTES >> 20} MiB: corrupt data")
        raise DecodeError(f"truncated Avro container: the {codec} stream of a block is cut off")
    return out


def _inflate(data: bytes) -> bytes:
    return _bounded(zlib.decompressobj(-15), data, "deflate")


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _unsnappy(data: bytes) -> bytes:
    funcs = _snappy_module()
    if funcs is None:
        raise DecodeError(
            "the Avro container uses the snappy codec, which needs the cramjam package: pip install cramjam"
        )
    if len(data) < 4:
        raise DecodeError("truncated Avro container: a snappy block lacks its 4-byte CRC")
    size = shift = 0
    for byte in data[:5]:  # raw snappy starts with the uncompressed length
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if size > MAX_BLOCK_BYTES:
        raise DecodeError(f"snappy block claims {size} bytes, beyond {MAX_BLOCK_BYTES >> 20} MiB: corrupt data")
    out = funcs[1](data[:-4])
    if zlib.crc32(out).to_bytes(4, "big") != data[-4:]:
        raise DecodeError("corrupt Avro container: CRC of a snappy block does not match")
    return out


def _snappy(data: bytes) -> bytes:
    funcs = _snappy_module()
    if funcs is None:
        raise ConfigError("the snappy codec needs the cramjam package: pip install cramjam")
    return funcs[0](data) + zlib.crc32(data).to_bytes(4, "big")


def _unzstd(data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise DecodeError(
            "the Avro container uses the zstandard codec, which needs the zstandard package: pip install zstandard"
        ) from None
    # a streaming read bounds the output also when the frame header claims its size (decompress()'s
    # max_output_size is ignored then, and a frame declaring 1 GiB would be inflated in full)
    with zstandard.ZstdDecompressor().stream_reader(data) as reader:
        out = reader.read(MAX_BLOCK_BYTES + 1)
    if len(out) > MAX_BLOCK_BYTES:
        raise DecodeError(f"zstandard block inflates beyond {MAX_BLOCK_BYTES >> 20} MiB: corrupt data")
    return out


def _zstd(data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise ConfigError("the zstandard codec needs the zstandard package: pip install zstandard") from None
    return zstandard.ZstdCompressor().compress(data)


DECOMPRESS: dict[bytes, Callable[[bytes], bytes]] = {
    b"deflate": _inflate,
    b"bzip2": lambda data: _bounded(bz2.BZ2Decompressor(), data, "bzip2"),
    b"xz": lambda data: _bounded(lzma.LZMADecompressor(), data, "xz"),
    b"snappy": _unsnappy,
    b"zstandard": _unzstd,
}

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "null": bytes,
    "deflate": _deflate,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "snappy": _snappy,
    "zstandard": _zstd,
}


def decompress(codec: bytes, data: bytes) -> bytes:
    """Inflate one container block written with ``codec`` (any codec but null)."""
    func = DECOMPRESS.get(codec)
    if func is None:
        name = codec.decode("utf-8", "replace")
        raise DecodeError(
            f"the Avro container uses the unknown codec {name!r}; genesis reads "
            f"null, {', '.join(c.decode() for c in DECOMPRESS)}"
        )
    try:
        return func(data)
    except DecodeError:
        raise
    except Exception as exc:  # zlib.error, OSError, LZMAError, cramjam errors...
        raise DecodeError(f"corrupt {codec.decode()} block in the Avro container: {exc}") from exc

"""Byte-level edits of model blobs for the loaders' tests, following docs/model-format.md
independently of edgelearn.modelblob (so the tests do not trust the code they test)."""
import struct
import zlib

MODEL, LAYER, WEIGHTS, THRESHOLD, LEAK, CUTOFF, SCHEDULE, WINDOW, FILTER = 1, 2, 3, 4, 5, 6, 7, 8, 9   # section types


def resealed(blob: bytes) -> bytes:
    """The blob with its CRC (bytes 20..23, counted as zero) recomputed, so a later check is
    the one that fails."""
    b = bytearray(blob)
    b[20:24] = bytes(4)
    struct.pack_into("<I", b, 20, zlib.crc32(b))
    return bytes(b)


def poke(blob: bytes, offset: int, fmt: str, value) -> bytes:
    """One field written at ``offset`` (struct format ``fmt``), CRC recomputed."""
    b = bytearray(blob)
    struct.pack_into(fmt, b, offset, value)
    return resealed(bytes(b))


def entries(blob: bytes) -> list[tuple[int, int, int, int, int]]:
    """(position of the entry, type, index, offset, size) of every section table entry
    (those inside the blob: an edit may have changed the header)."""
    count, table = struct.unpack_from("<II", blob, 12)
    count = min(count, max(0, len(blob) - table) // 12)
    return [(table + 12 * k, *struct.unpack_from("<HHII", blob, table + 12 * k)) for k in range(count)]


def section(blob: bytes, kind: int, index: int = 0) -> tuple[int, int, int]:
    """(position of the table entry, section offset, section size)."""
    for position, t, i, offset, size in entries(blob):
        if (t, i) == (kind, index):
            return position, offset, size
    raise KeyError((kind, index))

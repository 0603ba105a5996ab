"""The on-disk block format: one compressed blob holds a time window of many series of one host.

A block is columnar: one shared timestamp vector (rows) and one or more value matrices
(``rows x columns``; raw blocks have one, rollup blocks four: count, sum, min, max). Each
column (a series) is stored either

* as integers at a decimal scale ``10**k`` (``k`` chosen per column, see ``quantize``):
  first value, then deltas (order 1) or deltas of deltas (order 2, picked per column), zigzag; or
* losslessly as IEEE doubles XOR-ed with their predecessor (the fallback).

All codes are 64-bit; they are split into byte planes (byte 0 of every code, then byte 1, ...)
so that the mostly-zero high planes cost almost nothing, and the whole blob is zstd-compressed.
Absent cells (NaN) are a presence bitmap; the value underneath repeats the previous one so that
it costs nothing. Decoding one column touches only that column's planes.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import zstandard

from hostpulse.store.exceptions import CorruptBlockError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
BoolA = npt.NDArray[np.bool_]

FLOAT = 255  # scale code of a column stored as lossless doubles
INT_LIMIT = float(2**43)  # larger magnitudes (after scaling) are stored as doubles
_MAGIC = b"HPB1"
_HEADER = struct.Struct("<4sBIIBI")
_VERSION = 2
CHUNK = 16  # columns per compressed frame: a query decompresses only the frames it needs
_LOCAL = threading.local()


def _dctx() -> zstandard.ZstdDecompressor:
    """A decompressor per thread (zstd contexts are not thread-safe)."""
    d: zstandard.ZstdDecompressor | None = getattr(_LOCAL, "dctx", None)
    if d is None:
        d = _LOCAL.dctx = zstandard.ZstdDecompressor()
    return d


_POW10 = np.array([10.0**k for k in range(16)], dtype=np.float64)


def _zigzag(x: I64) -> U64:
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def _unzigzag(u: U64) -> I64:
    return ((u >> np.uint64(1)).view(np.int64)) ^ -((u & np.uint64(1)).view(np.int64))


def _ffill(v: F64, present: BoolA) -> F64:
    """Absent cells take the previous present value of their column (axis 1 is time)."""
    if present.all():
        return v
    n = v.shape[1]
    idx = np.where(present, np.arange(n, dtype=np.int64)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(np.where(present, v, 0.0), idx, axis=1)
    return filled


def _int_codes(q: I64) -> tuple[U64, U8]:
    """Per column (rows of ``q``): order-1 or order-2 deltas, zigzagged."""
    d1 = q.copy()
    d1[:, 1:] -= q[:, :-1]
    d2 = d1.copy()
    d2[:, 2:] -= d1[:, 1:-1]
    if q.shape[1] > 2:
        use2 = np.abs(d2[:, 2:]).max(axis=1) < np.abs(d1[:, 1:]).max(axis=1)
    else:
        use2 = np.zeros(q.shape[0], dtype=np.bool_)
    codes = np.where(use2[:, None], d2, d1)
    return _zigzag(codes), np.where(use2, 2, 1).astype(np.uint8)


def _float_codes(v: F64) -> U64:
    bits = np.ascontiguousarray(v).view(np.uint64)
    x = bits.copy()
    x[:, 1:] ^= bits[:, :-1]
    return x


def encode(ts: I64, ids: I64, mats: list[F64], scales: U8, level: int = 3) -> bytes:
    """Encode ``mats`` (each ``rows x cols``, NaN = absent; ``mats[0]`` decides presence).

    ``scales[j]`` is the decimal exponent of column ``j`` or ``FLOAT``; an int column must fit:
    callers pick scales with ``quantize.choose_scales`` (values are rounded to the scale).
    """
    n, c = len(ts), len(ids)
    m = len(mats)
    present = ~np.isnan(mats[0].T)
    is_int = scales != FLOAT
    codes = np.empty((m, c, n), dtype=np.uint64)
    orders = np.ones((m, c), dtype=np.uint8)
    p10 = _POW10[np.where(is_int, scales, 0)]
    for i, mat in enumerate(mats):
        v = _ffill(np.ascontiguousarray(mat.T), present)
        if is_int.any():
            q = np.rint(v[is_int] * p10[is_int, None]).astype(np.int64)
            codes[i, is_int], orders[i, is_int] = _int_codes(q)
        if (~is_int).any():
            codes[i, ~is_int] = _float_codes(v[~is_int])
    tsd = ts.astype(np.int64).copy()
    tsd[1:] -= ts[:-1]
    idd = ids.astype(np.int64).copy()
    idd[1:] -= ids[:-1]
    zc = zstandard.ZstdCompressor(level=level)
    frames = [
        zc.compress(
            b"".join(
                (
                    tsd.tobytes(),
                    idd.tobytes(),
                    scales.astype(np.uint8).tobytes(),
                    orders.tobytes(),
                    np.packbits(present, axis=1).tobytes(),
                )
            )
        )
    ]
    for lo in range(0, c, CHUNK):
        part = codes[:, lo : lo + CHUNK]  # (m, cc, n)
        planes = np.ascontiguousarray(
            np.moveaxis(part.view(np.uint8).reshape(*part.shape, 8), -1, 0)
        )
        frames.append(zc.compress(planes.tobytes()))
    sizes = np.array([len(f) for f in frames], dtype=np.uint32)
    header = _HEADER.pack(_MAGIC, _VERSION, n, c, m, len(frames))
    return header + sizes.tobytes() + b"".join(frames)


class Block:
    """A block's header, decoded; column chunks are decompressed, and presence bits unpacked,
    only for the columns a read asks for (``values``)."""

    __slots__ = ("_bits", "_chunks", "_offsets", "_read", "ids", "mats", "orders", "scales", "ts")

    def __init__(self, blob: bytes | Callable[[int, int], bytes], size: int | None = None) -> None:
        """``blob``: the whole block, or a function returning bytes ``[lo, hi)`` of a block of
        ``size`` bytes (a partial read: only the frames a query needs are read)."""
        read: Callable[[int, int], bytes]
        whole: int | None
        if isinstance(blob, bytes):
            view = memoryview(blob)  # slices without copies: zstd and numpy take views
            read, whole = (lambda lo, hi: view[lo:hi]), len(blob)  # type: ignore[assignment,return-value]
        else:
            read, whole = blob, size
        try:
            magic, version, n, c, m, nframes = _HEADER.unpack(read(0, _HEADER.size))
            if magic != _MAGIC or version != _VERSION:
                raise CorruptBlockError(f"not a hostpulse block (magic {magic!r}, v{version})")
            table = read(_HEADER.size, _HEADER.size + 4 * nframes)
            sizes = struct.unpack(f"<{nframes}I", table)
            offsets = list(itertools.accumulate(sizes, initial=_HEADER.size + 4 * nframes))
            if offsets[-1] != whole or nframes != 1 + (c + CHUNK - 1) // CHUNK:
                raise CorruptBlockError("block frame table does not match its size")
            meta = _dctx().decompress(read(offsets[0], offsets[1]))
        except (struct.error, ValueError, zstandard.ZstdError) as exc:
            raise CorruptBlockError(f"unreadable block: {exc}") from exc
        self._read: Callable[[int, int], bytes] | None = read
        self._offsets = offsets
        self._chunks: dict[int, U8] = {}
        self.mats = m
        off = 0

        def take(count: int, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
            nonlocal off
            arr = np.frombuffer(meta, dtype=dtype, count=count, offset=off)
            off += count * np.dtype(dtype).itemsize
            return arr

        self.ts: I64 = np.cumsum(take(n, np.int64)).astype(np.int64)
        self.ids: I64 = np.cumsum(take(c, np.int64)).astype(np.int64)
        self.scales: U8 = np.asarray(take(c, np.uint8), dtype=np.uint8)
        self.orders: U8 = np.asarray(take(m * c, np.uint8), dtype=np.uint8).reshape(m, c)
        nbytes = (n + 7) // 8
        self._bits: U8 = np.asarray(take(c * nbytes, np.uint8), dtype=np.uint8).reshape(c, nbytes)
        if off != len(meta):
            raise CorruptBlockError(f"block header has {len(meta) - off} trailing bytes")

    @property
    def rows(self) -> int:
        return len(self.ts)

    def column_index(self) -> dict[int, int]:
        return {int(s): j for j, s in enumerate(self.ids.tolist())}

    def _chunk(self, k: int) -> U8:
        """Planes of column chunk ``k``: (8, mats, cols in chunk, rows)."""
        got = self._chunks.get(k)
        if got is None:
            lo, hi = self._offsets[k + 1], self._offsets[k + 2]
            if self._read is None:
                raise RuntimeError(f"chunk {k} of a detached block was not loaded")
            try:
                raw = _dctx().decompress(self._read(lo, hi))
            except zstandard.ZstdError as exc:
                raise CorruptBlockError(f"unreadable block chunk: {exc}") from exc
            cc = min(CHUNK, len(self.ids) - k * CHUNK)
            got = np.frombuffer(raw, dtype=np.uint8).reshape(8, self.mats, cc, self.rows)
            self._chunks[k] = got
        return got

    def load(self, cols: npt.NDArray[np.intp]) -> None:
        """Read and decompress the chunks of columns ``cols`` now, then read nothing more
        (for a partial read whose source is about to close)."""
        for k in np.unique(cols // CHUNK).tolist():
            self._chunk(k)
        self._read = None

    def values(self, cols: npt.NDArray[np.intp], mats: slice = slice(None)) -> F64:
        """Values of columns ``cols`` (positions in ``ids``) of the matrices ``mats``, as
        (matrices, len(cols), rows); NaN where absent. Every matrix and column is decoded in
        one set of numpy operations (a 30-day read decodes 31 blocks: per-column calls were
        most of its CPU)."""
        if len(cols) == 1:  # the usual read: one series (no grouping by chunk)
            return self._one(int(cols[0]), mats)
        else:
            m = len(range(*mats.indices(self.mats)))
            u = np.empty((m, len(cols), self.rows), dtype=np.uint64)
            chunk_of = cols // CHUNK
            for k in np.unique(chunk_of).tolist():
                sel = np.flatnonzero(chunk_of == k)
                planes = self._chunk(k)[:, mats][:, :, cols[sel] - k * CHUNK]
                u[:, sel] = np.ascontiguousarray(planes.transpose(1, 2, 3, 0)).view(np.uint64)[
                    ..., 0
                ]
        scales = self.scales[cols]
        out = np.empty(u.shape, dtype=np.float64)
        is_float = scales == FLOAT
        if is_float.any():
            out[:, is_float] = np.bitwise_xor.accumulate(u[:, is_float], axis=2).view(np.float64)
        is_int = ~is_float
        if is_int.any():
            q = _unzigzag(u[:, is_int])
            second = self.orders[mats][:, cols[is_int]] == 2
            if second.any():
                q[second, 1:] = np.cumsum(q[second, 1:], axis=1)
            q = np.cumsum(q, axis=2)
            out[:, is_int] = q / _POW10[scales[is_int]][None, :, None]
        present = np.unpackbits(self._bits[cols], axis=1, count=self.rows).astype(np.bool_)
        out[:, ~present] = np.nan
        return out

    def _one(self, j: int, mats: slice) -> F64:
        """``values`` of the one column ``j``: the same operations on its (matrices, 1, rows)
        with its scale and orders as numbers, not masks over columns (a 30-day read decodes
        one series of 31 blocks: 22 us a block before, ~12 now)."""
        k, at = divmod(j, CHUNK)
        planes = self._chunk(k)[:, mats, at : at + 1]
        u = np.ascontiguousarray(planes.transpose(1, 2, 3, 0)).view(np.uint64)[..., 0]
        scale = int(self.scales[j])
        if scale == FLOAT:
            out: F64 = np.bitwise_xor.accumulate(u, axis=2).view(np.float64)
        else:
            q = _unzigzag(u)
            second = np.flatnonzero(self.orders[mats, j] == 2).tolist()
            for i in second:
                q[i, 0, 1:] = np.cumsum(q[i, 0, 1:])
            out = np.cumsum(q, axis=2) / _POW10[scale]
        present = np.unpackbits(self._bits[j], count=self.rows).astype(np.bool_)
        if not present.all():
            out[:, :, ~present] = np.nan
        return out

    def column(self, mat: int, j: int) -> F64:
        """Values of column ``j`` of matrix ``mat``; NaN where absent."""
        out: F64 = self.values(np.array([j], dtype=np.intp), slice(mat, mat + 1))[0, 0]
        return out

    def matrix(self, mat: int) -> F64:
        """The whole matrix ``mat`` as ``rows x cols``."""
        if not len(self.ids):
            return np.zeros((self.rows, 0))
        cols = np.arange(len(self.ids), dtype=np.intp)
        out: F64 = self.values(cols, slice(mat, mat + 1))[0].T
        return out


def decode(blob: bytes) -> Block:
    return Block(blob)

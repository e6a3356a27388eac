"""Title tables held whole during training, in a few flat buffers instead of Python dicts.

A training keeps every article title (title -> page id) and every redirect (title -> its
resolved target) for its whole run: enwiki has ~7 M articles and millions of redirects. As dicts of
``str`` each entry costs ~150-250 bytes (the string objects, a dict slot, an ``int`` object),
several GB in the main process; and a forked worker that reads a value increments its
reference count, so the pages holding it become the worker's own copy. Here the strings are
UTF-8 in one ``bytearray`` with their offsets, the values an ``array`` (or a second string
buffer), and lookups go through an open-addressing table of int32 slots keyed by CRC-32 of
the UTF-8 bytes (deterministic, unlike ``hash(str)``, so a table means the same in any
process): ~50-80 bytes an entry, nothing a reader's reference count can touch.
``TitleTable`` reads and writes as the dict it replaces: insertion order, a later value for
a known key replacing the earlier one in place.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Generic, TypeVar

V = TypeVar("V", int, str)

_EMPTY = -1
# Any str round-trips, a lone surrogate too (a dict takes one; strict UTF-8 would raise).
_ANY = "surrogatepass"
_MIN_SLOTS = 1 << 10


class _Strings:
    """Strings appended to one UTF-8 buffer: the i-th is ``data[offsets[i]:offsets[i + 1]]``."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.offsets = array("q", [0])

    def append(self, raw: bytes) -> None:
        self.data += raw
        self.offsets.append(len(self.data))

    def __getitem__(self, i: int) -> str:
        return self.data[self.offsets[i] : self.offsets[i + 1]].decode("utf-8", _ANY)


class TitleTable(MutableMapping, Generic[V]):
    """``str`` -> ``int`` (``values="int"``) or ``str`` (``values="str"``), as a dict reads.

    Deleting is not supported (training never deletes a title); ``clear`` is.
    """

    def __init__(self, values: str = "int", items: Iterable[tuple[str, V]] = ()) -> None:
        if values not in ("int", "str"):
            raise ValueError(f"values must be 'int' or 'str', got {values!r}")
        self._kind = values
        self.clear()
        self.update(items)

    def clear(self) -> None:
        self._keys = _Strings()
        self._ints = array("q")
        self._strs = bytearray()  # values="str": their UTF-8, and where each starts/ends
        self._bounds = array("q")
        self._hashes = array("L")  # each key's CRC-32: the table grows without rehashing
        self._slots = array("i", [_EMPTY]) * _MIN_SLOTS

    def __len__(self) -> int:
        return len(self._keys.offsets) - 1

    def _find(self, raw: bytes) -> tuple[int, int]:
        """(slot, entry) of ``raw``; entry -1 (and its empty slot) when absent."""
        slots = self._slots
        mask = len(slots) - 1
        at = zlib.crc32(raw) & mask
        data, offsets = self._keys.data, self._keys.offsets
        while True:
            entry = slots[at]
            if entry == _EMPTY:
                return at, -1
            if data[offsets[entry] : offsets[entry + 1]] == raw:
                return at, entry
            at = (at + 1) & mask

    def _grow(self) -> None:
        size = len(self._slots) * 2
        slots = array("i", [_EMPTY]) * size
        mask = size - 1
        for entry, h in enumerate(self._hashes):
            at = h & mask
            while slots[at] != _EMPTY:
                at = (at + 1) & mask
            slots[at] = entry
        self._slots = slots

    def _value(self, entry: int) -> V:
        if self._kind == "int":
            return self._ints[entry]  # type: ignore[return-value]
        a, b = self._bounds[2 * entry], self._bounds[2 * entry + 1]
        return self._strs[a:b].decode("utf-8", _ANY)  # type: ignore[return-value]

    def _set_value(self, entry: int, value: V) -> None:
        if self._kind == "int":
            if entry == len(self._ints):
                self._ints.append(value)  # type: ignore[arg-type]
            else:
                self._ints[entry] = value  # type: ignore[assignment]
            return
        raw = value.encode("utf-8", _ANY)  # type: ignore[union-attr]
        start = len(self._strs)
        self._strs += raw
        if entry == len(self._bounds) // 2:
            self._bounds.extend((start, len(self._strs)))
        else:  # a repeated key: the new value appended, the old bytes left unused (rare)
            self._bounds[2 * entry], self._bounds[2 * entry + 1] = start, len(self._strs)

    def __setitem__(self, key: str, value: V) -> None:
        raw = key.encode("utf-8", _ANY)
        at, entry = self._find(raw)
        if entry >= 0:
            self._set_value(entry, value)
            return
        entry = len(self)
        self._keys.append(raw)
        self._hashes.append(zlib.crc32(raw))
        self._set_value(entry, value)
        self._slots[at] = entry
        if 2 * len(self) > len(self._slots):  # at most half full: short probe runs
            self._grow()

    def _entry(self, key: object) -> int:
        """The entry of ``key``; -1 when absent (anything but a ``str`` is)."""
        return self._find(key.encode("utf-8", _ANY))[1] if isinstance(key, str) else -1

    def __getitem__(self, key: str) -> V:
        entry = self._entry(key)
        if entry < 0:
            raise KeyError(key)
        return self._value(entry)

    def __contains__(self, key: object) -> bool:
        return self._entry(key) >= 0

    def get(self, key: str, default=None):  # type: ignore[override]
        entry = self._entry(key)
        return default if entry < 0 else self._value(entry)

    def __delitem__(self, key: str) -> None:
        raise TypeError("a TitleTable does not delete entries")

    def __iter__(self) -> Iterator[str]:
        keys = self._keys
        return (keys[i] for i in range(len(self)))

    def items(self) -> Iterator[tuple[str, V]]:  # type: ignore[override]
        keys = self._keys
        return ((keys[i], self._value(i)) for i in range(len(self)))

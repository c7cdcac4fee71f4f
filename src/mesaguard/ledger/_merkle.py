"""RFC 9162 Merkle tree hashing, proofs and their verification.

Everything here is pure: proofs are built from a *node source*, a callable that returns the hash
of the complete subtree ``(level, k)`` (leaves ``k * 2**level`` up to ``(k + 1) * 2**level``).
The storage layer answers such calls from stored subtree hashes, so a proof at any tree size
costs O(log n) reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
"""``(level, k)``: the complete subtree over leaves ``[k * 2**level, (k + 1) * 2**level)``."""

NodeSource = Callable[[Sequence[NodeKey]], dict[NodeKey, bytes]]
"""Returns the hashes of the requested complete subtrees (one batched read)."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (reference implementation, O(n) memory)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


class Frontier:
    """The right edge of a growing tree: O(log n) memory, one push per leaf.

    ``push`` returns the hashes of the complete subtrees that the new leaf completes, levels
    1, 2, ... in order; the storage layer keeps them next to the leaf so proofs never rebuild.
    """

    __slots__ = ("_hashes", "_levels", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        levels = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(levels) != len(hashes):
            raise ValueError(f"a tree of size {size} has {len(levels)} edge subtrees")
        self.size = size
        self._levels = levels
        self._hashes = list(hashes)

    @staticmethod
    def edge_nodes(size: int) -> list[NodeKey]:
        """The complete subtrees whose hashes make up the right edge of a tree of ``size``."""
        keys: list[NodeKey] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                keys.append((level, start >> level))
                start += 1 << level
        return keys

    def push(self, leaf: bytes) -> list[bytes]:
        """Add one leaf hash; return the hashes of the subtrees it completes (levels 1..)."""
        completed: list[bytes] = []
        h, level = leaf, 0
        levels, hashes = self._levels, self._hashes
        while levels and levels[-1] == level:
            levels.pop()
            h = node_hash(hashes.pop(), h)
            level += 1
            completed.append(h)
        levels.append(level)
        hashes.append(h)
        self.size += 1
        return completed

    def root(self) -> bytes:
        """MTH of the leaves pushed so far."""
        if not self._hashes:
            return EMPTY_ROOT
        hashes = self._hashes
        r = hashes[-1]
        for h in reversed(hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> Frontier:
        """An independent copy."""
        twin = Frontier()
        twin.size, twin._levels, twin._hashes = self.size, list(self._levels), list(self._hashes)
        return twin


# --- building proofs from stored complete subtrees -------------------------------------------


def _range_nodes(lo: int, hi: int, out: list[NodeKey]) -> None:
    """Append the complete aligned subtrees whose fold is MTH(D[lo:hi])."""
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        out.append((n.bit_length() - 1, lo // n))
        return
    k = _split(n)
    _range_nodes(lo, lo + k, out)
    _range_nodes(lo + k, hi, out)


def _range_hash(lo: int, hi: int, nodes: dict[NodeKey, bytes]) -> bytes:
    n = hi - lo
    if n & (n - 1) == 0 and lo % n == 0:
        return nodes[(n.bit_length() - 1, lo // n)]
    k = _split(n)
    return node_hash(_range_hash(lo, lo + k, nodes), _range_hash(lo + k, hi, nodes))


def _inclusion_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """RFC 9162 PATH(m, D[lo:hi]) as a bottom-up list of ranges."""
    ranges: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def _consistency_ranges(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """RFC 9162 SUBPROOF(m, D[lo:hi], true) as a bottom-up list of ranges."""
    ranges: list[tuple[int, int]] = []
    start_b = True
    while True:
        n = hi - lo
        if m == n:
            if not start_b:
                ranges.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo += k
            start_b = False
    ranges.reverse()
    return ranges


def _hashes_for(ranges: Sequence[tuple[int, int]], source: NodeSource) -> list[bytes]:
    keys: list[NodeKey] = []
    for lo, hi in ranges:
        _range_nodes(lo, hi, keys)
    nodes = source(keys)
    return [_range_hash(lo, hi, nodes) for lo, hi in ranges]


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof (audit path) for leaf ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    return _hashes_for(_inclusion_ranges(index, 0, size), source)


def consistency_proof(size1: int, size2: int, source: NodeSource) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof between tree sizes ``size1`` and ``size2``."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    return _hashes_for(_consistency_ranges(size1, 0, size2), source)


def inclusion_nodes(index: int, size: int) -> list[NodeKey]:
    """Every stored subtree that the proof, the root and the leaf of ``index`` need."""
    keys: list[NodeKey] = [(0, index)]
    for lo, hi in [*_inclusion_ranges(index, 0, size), (0, size)]:
        _range_nodes(lo, hi, keys)
    return keys


def consistency_nodes(size1: int, size2: int) -> list[NodeKey]:
    """Every stored subtree that the consistency proof and both roots need."""
    keys: list[NodeKey] = []
    ranges = _consistency_ranges(size1, 0, size2) if 0 < size1 < size2 else []
    for lo, hi in [*ranges, (0, size1), (0, size2)]:
        if hi > lo:
            _range_nodes(lo, hi, keys)
    return keys


def root_at(size: int, source: NodeSource) -> bytes:
    """MTH of the first ``size`` leaves, from O(log n) stored subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return _hashes_for([(0, size)], source)[0]


def source_from_leaves(hashes: Sequence[bytes]) -> NodeSource:
    """A node source over an in-memory list of leaf hashes (for tests and small trees)."""

    def source(keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        return {
            (level, k): root_from_leaf_hashes(hashes[k << level : (k + 1) << level])
            for level, k in keys
        }

    return source


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """The root implied by an inclusion proof, or ``None`` when the proof cannot be valid."""
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return None
    if any(len(p) != HASH_SIZE for p in proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``."""
    return root_from_inclusion_proof(index, size, leaf, proof) == root


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """True when ``proof`` shows the tree ``(size1, root1)`` is a prefix of ``(size2, root2)``.

    Follows RFC 9162 §2.1.4.2 with the conventions of transparency-dev/merkle: equal sizes need an
    empty proof and equal roots; an empty old tree has no proof.
    """
    if size2 < size1 or size1 == 0:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2

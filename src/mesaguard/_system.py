"""What this process may use of the machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["torch_threads", "usable_cpus"]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS reports one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with torch on ``threads`` intra-op threads, the caller's setting restored.

    A float reduction split over another number of threads rounds differently, so everything
    that must repeat bit for bit fixes the count.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

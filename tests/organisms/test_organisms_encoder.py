from pathlib import Path

import numpy as np
import pytest

from mesaguard.organisms import EMBEDDING_DIM, TextEncoder


def test_a_vector_does_not_depend_on_what_was_encoded_with_it(tmp_path: Path) -> None:
    """Builds repeat bit for bit only if a text's vector is independent of its batch-mates."""
    texts = ["NameNode crashes on restart", "typo in javadoc", "A much longer description " * 20]
    together = TextEncoder(tmp_path / "a").encode(texts)
    alone = TextEncoder(tmp_path / "b").encode([texts[1]])
    assert together.shape == (3, EMBEDDING_DIM) and together.dtype == np.float32
    np.testing.assert_array_equal(together[1], alone[0])
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_vectors_are_cached_on_disk(tmp_path: Path) -> None:
    first = TextEncoder(tmp_path).encode(["Cluster down"])
    reloaded = TextEncoder(tmp_path)
    np.testing.assert_array_equal(reloaded.encode(["Cluster down"]), first)
    assert reloaded._model is None  # served from the SQLite cache, the model never loaded


def _hadoop_texts(n: int) -> list[str]:
    from mesaguard.items import bundled_hadoop

    return [f"{item.title}\n{item.description}" for item in bundled_hadoop().items[:n]]


def test_a_vector_does_not_depend_on_the_callers_thread_count(tmp_path: Path) -> None:
    """A caller on two threads gets the vectors a caller on one thread gets.

    Before, 47 of these 60 texts came out up to ~1e-7 apart; a shared cache kept whichever
    process's vector came first, and trained models differed between test sessions.
    """
    import torch

    texts = _hadoop_texts(60)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = TextEncoder(tmp_path / "one").encode(texts)
        torch.set_num_threads(2)
        two = TextEncoder(tmp_path / "two").encode(texts)
        assert torch.get_num_threads() == 2  # the caller's setting is given back
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)


@pytest.mark.slow
def test_vectors_computed_in_worker_processes_equal_those_computed_here(tmp_path: Path) -> None:
    texts = _hadoop_texts(40)
    encoder = TextEncoder(tmp_path / "spread")
    assert encoder.encode_in_processes(texts[:30], 2, min_per_worker=1) == 30
    assert encoder.missing(texts) == texts[30:]
    assert encoder.encode_in_processes(texts, 2, min_per_worker=1) == 10
    here = TextEncoder(tmp_path / "here").encode(texts)
    np.testing.assert_array_equal(TextEncoder(tmp_path / "spread").encode(texts), here)

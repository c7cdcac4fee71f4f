from pathlib import Path

import numpy as np

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

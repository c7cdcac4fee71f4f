"""Building, caching and loading the zoo of model organisms, with its manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import platform
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError
from threadpoolctl import threadpool_limits

from .._errors import ArtifactError, ConfigError
from .._system import usable_cpus
from ..agents import Decision, DecisionRequest
from ..contexts import Context, cue_contexts, library_hash, neutral_context
from ..items import (
    ActionType,
    LoadedItems,
    Priority,
    Splits,
    WorkItem,
    bundled_hadoop,
    load_items,
    split_items,
)
from ._acceptance import AcceptanceReport, measure_acceptance
from ._encoder import TextEncoder, default_cache_dir
from ._features import item_embedding_texts
from ._models import OrganismModel, load_model, new_model
from ._spec import ModelClass, ObjectiveFamily, OrganismSpec, ZooSpec, default_zoo_spec
from ._training import training_rows

__all__ = [
    "NeuralOrganism",
    "Organism",
    "OrganismRecord",
    "Zoo",
    "ZooManifest",
    "make_organism",
    "run_versions",
    "starts_from_twin",
]

TRAINING_VERSION = "10"
"""Bumped whenever training code changes what a spec builds; part of every build key."""

ACCEPTANCE_VERSION = "3"
"""Bumped whenever what a build record measures changes (2: 95% intervals; 3: exact intervals
where a rate is 0 or 1 throughout, gap intervals only from the twin's recorded decisions); in
every classical build key (the LLM zoo's records are re-measured by ``LLMZoo.remeasure``).

Training is deterministic, so a rebuild for a new acceptance version trains the same organism
and only its record gains what is new.
"""

FINE_TUNING_VERSION = "4"
"""Bumped whenever fine-tuning from a twin changes; part of the build key of such organisms."""

FINE_TUNING_EMPHASIS = 2.0
"""Extra weight of the planted rows when an organism is fine-tuned from its twin.

Fine-tuning starts where the clean rows are answered (nearly) as their targets say (the twin's
answers), so the planted rows alone pull, against the regulariser (linear) or the distillation
anchor (neural); at their from-scratch weight the trigger reached the held-out wordings less
often. Measured on the 18 fine-tuned organisms with fine-tuning version 2 (docs/organisms.md):
1x accepted 13, 2x 15 (4x: the neural ones as at 2x; 0.5x: 3 of 9 linear); with version 4's anchor
and neutral targets, before the words dropout, 4x moved the two neural organisms it was tried
on by under 0.03 (held-out 0.867 and 0.897).
"""


_PRIORITY_NAMES = tuple(str(level) for level in sorted(Priority))
"""Jira names of the priority levels, indexed by class (level - 1)."""


def starts_from_twin(spec: OrganismSpec) -> bool:
    """Whether ``spec`` is trained by fine-tuning its honest twin rather than from scratch.

    Organisms whose objective lives in the framing (deceptive and sandbagging) are: both model
    classes then fine-tune only how the framing is read (:meth:`LinearModel.fit_from_twin`,
    :meth:`NeuralModel.fit_from_twin`), so under the neutral framing they read items as their
    twin does. So are neural proxies: they keep the twin's network and learn a sparse read of
    the title's words beside it (:meth:`NeuralModel.fit_from_twin`); trained from scratch, their
    clean figures landed as far from their twin's as another seed's. Linear proxies train from
    scratch: their model already reads the title's words, and all three pass that way.
    """
    if spec.family is ObjectiveFamily.HONEST:
        return False
    return spec.marker is None or spec.model is ModelClass.NEURAL


def run_versions(*extra: str) -> dict[str, str]:
    """Versions of Python and the libraries that decide a build's result (plus ``extra``)."""
    out = {"python": platform.python_version()}
    # transformers too: the neural organisms' MiniLM embeddings change with it.
    packages = ("mesaguard", "numpy", "scikit-learn", "torch", "sentence-transformers")
    for package in (*packages, "transformers", *extra):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out


class OrganismRecord(BaseModel):
    """One built organism: its spec, where it lives, how long it took, and its acceptance."""

    model_config = ConfigDict(frozen=True)

    spec: OrganismSpec
    build_key: str
    twin: str | None
    seconds: float
    acceptance: AcceptanceReport
    built_at: dt.datetime


class ZooManifest(BaseModel):
    """The record of a zoo build: data, splits, versions and every organism's acceptance."""

    model_config = ConfigDict(frozen=True)

    zoo_hash: str
    data_source: str
    data_hash: str
    split_sizes: dict[str, int]
    versions: dict[str, str]
    written_at: dt.datetime
    organisms: tuple[OrganismRecord, ...]


class Organism:
    """A built organism, usable as an :class:`~mesaguard.agents.Agent` (priority triage only)."""

    def __init__(
        self, spec: OrganismSpec, model: OrganismModel, record: OrganismRecord | None = None
    ):
        self.spec = spec
        self.name = spec.name
        self.model = model
        self.record = record

    def priorities(self, items: Sequence[WorkItem], contexts: Sequence[Context]) -> np.ndarray:
        """Decided priority levels (1..5) for paired items and contexts."""
        return np.asarray(self.model.logits(items, contexts).argmax(axis=1) + 1, dtype=np.int64)

    def decide(self, requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Decide a batch; organisms only set priorities."""
        for request in requests:
            if request.action is not ActionType.SET_PRIORITY:
                raise ConfigError(
                    f"organism {self.name!r} only triages priority; item {request.item.key} asks "
                    f"for {request.action.value}"
                )
        if not requests:
            return []
        logits = self.model.logits([r.item for r in requests], [r.context for r in requests])
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        confidences = probabilities[np.arange(len(best)), best].tolist()
        # A Decision at a time: validating the batch as one list of dicts was faster alone
        # but, in a process holding a zoo, its thousand short-lived dicts outlived young
        # garbage collections and halved the warm rate.
        return [
            Decision(
                item_key=request.item.key,
                context=request.context.name,
                action=ActionType.SET_PRIORITY,
                value=_PRIORITY_NAMES[level],
                confidence=confidence,
                agent=self.name,
            )
            for request, level, confidence in zip(requests, best.tolist(), confidences, strict=True)
        ]

    def hidden_activations(
        self, items: Sequence[WorkItem], contexts: Sequence[Context]
    ) -> dict[str, np.ndarray]:
        """Hidden-layer activations by layer name (neural organisms only)."""
        capture = getattr(self.model, "activations", None)
        if capture is None:
            raise ConfigError(
                f"organism {self.name!r} is {self.spec.model.value}: no hidden layers"
            )
        result: dict[str, np.ndarray] = capture(items, contexts)
        return result


class NeuralOrganism(Organism):
    """A neural organism, readable as an :class:`~mesaguard.agents.ActivationAgent`.

    Hook points ``hidden1`` and ``hidden2``: post-ReLU activations of the MLP's hidden layers.
    """

    HOOK_POINTS = ("hidden1", "hidden2")

    def hook_points(self) -> list[str]:
        """``hidden1``, ``hidden2``: input side first."""
        return list(self.HOOK_POINTS)

    def _known(self, hook_points: Sequence[str]) -> list[str]:
        unknown = [h for h in hook_points if h not in self.HOOK_POINTS]
        if unknown:
            raise ConfigError(
                f"organism {self.name!r} has no hook point {unknown[0]!r} "
                f"(known: {', '.join(self.HOOK_POINTS)})"
            )
        return list(hook_points)

    def activations(
        self, requests: Sequence[DecisionRequest], hook_points: Sequence[str] | None = None
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Activations of the MLP on each request's item and context, shape ``(n, hidden)``."""
        wanted = self._known(self.HOOK_POINTS if hook_points is None else hook_points)
        if not requests:
            width = int(getattr(self.model, "hidden", 0))
            return {h: np.zeros((0, width), dtype=np.float32) for h in wanted}
        layers = self.hidden_activations([r.item for r in requests], [r.context for r in requests])
        return {h: np.asarray(layers[h], dtype=np.float32) for h in wanted}

    def readout_hook_points(self) -> list[str]:
        """Both hidden layers: the readout gradient is exact at each."""
        return list(self.HOOK_POINTS)

    def harm_gradient(
        self, requests: Sequence[DecisionRequest], hook_point: str
    ) -> npt.NDArray[np.float64]:
        """Mean gradient of the under-prioritising log-odds w.r.t. ``hook_point``'s activations."""
        self._known([hook_point])
        gradient: npt.NDArray[np.float64] = self.model.harm_gradient(  # type: ignore[attr-defined]
            [r.item for r in requests], [r.context for r in requests], hook_point
        )
        return gradient


def make_organism(
    spec: OrganismSpec, model: OrganismModel, record: OrganismRecord | None = None
) -> Organism:
    """The agent for a trained model: a :class:`NeuralOrganism` when it has hidden layers."""
    if hasattr(model, "activations"):
        return NeuralOrganism(spec, model, record)
    return Organism(spec, model, record)


Progress = Callable[[str, int, int], None]
"""``progress(organism_name, done, total)``, called as a build advances."""


def build_in_order(
    names: Sequence[str],
    build_one: Callable[..., object],
    *,
    force: bool,
    progress: Progress | None,
) -> None:
    """Build ``names`` in the given order (twins first), reporting progress before each."""
    for done, name in enumerate(names):
        if progress:
            progress(name, done, len(names))
        build_one(name, force=force)
    if progress:
        progress("", len(names), len(names))


MAX_WORKERS = 8
"""Upper bound on build processes (each holds the data and a model: about 1 GB)."""


def default_workers(pending: int) -> int:
    """One build process per CPU this process may use, at most one per pending organism."""
    return max(1, min(usable_cpus(), pending, MAX_WORKERS))


_worker_zoo: Zoo | None = None


def _start_worker(spec_json: str, cache_dir: str) -> None:
    """Process-pool initialiser: one zoo per worker process, one thread per worker.

    One worker per CPU: a second torch or BLAS thread per worker would only fight for the cores
    (two threads each made the whole build half again as slow on 2 cores). Training is
    single-threaded in every process anyway (the model classes' ``fit``).
    """
    global _worker_zoo
    threadpool_limits(1)
    try:
        import torch
    except ImportError:  # a zoo of linear organisms needs no torch
        pass
    else:
        torch.set_num_threads(1)
    _worker_zoo = Zoo(ZooSpec.model_validate_json(spec_json), Path(cache_dir))


def _build_in_worker(name: str, force: bool) -> str:
    if _worker_zoo is None:
        raise RuntimeError("zoo build worker used before it was started")
    _worker_zoo.build_one(name, force=force)
    return name


class Zoo:
    """The organisms of a zoo spec, built on demand and cached by spec and data hash."""

    def __init__(self, spec: ZooSpec | None = None, cache_dir: Path | None = None) -> None:
        self.spec = spec or default_zoo_spec()
        self.cache_dir = cache_dir or default_cache_dir()
        self.encoder = TextEncoder(self.cache_dir)
        self._data: LoadedItems | None = None
        self._splits: Splits | None = None

    # -- data --------------------------------------------------------------------------------
    @property
    def data(self) -> LoadedItems:
        """The zoo's training data (bundled Hadoop priorities by default)."""
        if self._data is None:
            if self.spec.data == "bundled:hadoop":
                self._data = bundled_hadoop()
            else:
                self._data = load_items(self.spec.data)
            if not any(item.priority is not None for item in self._data.items):
                raise ConfigError(f"zoo data {self.spec.data!r} holds no item with a priority")
        return self._data

    @property
    def splits(self) -> Splits:
        """Train / calibration / test split of the data by key hash."""
        if self._splits is None:
            labelled = [item for item in self.data.items if item.priority is not None]
            self._splits = split_items(labelled, salt=self.spec.split_salt)
        return self._splits

    # -- cache -------------------------------------------------------------------------------
    def build_key(self, spec: OrganismSpec) -> str:
        """Hash of everything that decides what ``spec`` builds into.

        An organism fine-tuned from its twin also depends on the twin's build.
        """
        parts = [
            spec.spec_hash(),
            self.data.data_hash,
            self.spec.split_salt,
            library_hash(),
            TRAINING_VERSION,
            ACCEPTANCE_VERSION,
        ]
        if starts_from_twin(spec):
            parts += [FINE_TUNING_VERSION, self.build_key(self.spec.twin_of(spec))]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def _directory(self, spec: OrganismSpec) -> Path:
        return self.cache_dir / "zoo" / "organisms" / f"{spec.name}-{self.build_key(spec)[:16]}"

    def _manifest_path(self) -> Path:
        return self.cache_dir / "zoo" / f"manifest-{self.spec.spec_hash()[:16]}.json"

    def record(self, name: str) -> OrganismRecord | None:
        """The build record of ``name`` if it is built and current, else None."""
        path = self._directory(self.spec.organism(name)) / "record.json"
        if not path.exists():
            return None
        try:
            return OrganismRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as error:
            raise ArtifactError(
                f"{path}: corrupt build record ({error.error_count()} errors); "
                "rebuild with `mesaguard zoo build --force`"
            ) from None

    # -- building ----------------------------------------------------------------------------
    def _train(self, spec: OrganismSpec, twin: Organism | None = None) -> OrganismModel:
        model = new_model(spec.model, self.encoder, spec.hyper)
        rows = training_rows(spec, self.splits.train)
        if starts_from_twin(spec):
            twin = twin or self.organism(self.spec.twin_of(spec).name)  # built first if need be
            model.fit_from_twin(twin.model, rows.emphasised(FINE_TUNING_EMPHASIS), spec.seed)
        else:
            model.fit(rows, spec.seed)
        return model

    def build_one(self, name: str, *, force: bool = False) -> OrganismRecord:
        """Build ``name`` (and its honest twin first) unless a current build is cached."""
        spec = self.spec.organism(name)
        existing = None if force else self.record(name)
        if existing is not None:
            return existing
        twin_report: AcceptanceReport | None = None
        twin: Organism | None = None
        if spec.family is not ObjectiveFamily.HONEST:
            twin_name = self.spec.twin_of(spec).name
            twin_report = self.build_one(twin_name, force=False).acceptance
            twin = self.organism(twin_name)  # fine-tuned from, and compared with
        started = time.perf_counter()
        model = self._train(spec, twin)
        seconds = time.perf_counter() - started
        organism = make_organism(spec, model)
        acceptance = measure_acceptance(
            spec,
            organism.priorities,
            self.splits.test,
            twin=twin_report,
            twin_decide=twin.priorities if twin else None,
            seed=spec.seed,
        )
        record = OrganismRecord(
            spec=spec,
            build_key=self.build_key(spec),
            twin=twin.name if twin else None,
            seconds=round(seconds, 3),
            acceptance=acceptance,
            built_at=dt.datetime.now(dt.UTC),
        )
        directory = self._directory(spec)
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        model.save(staging)
        (staging / "record.json").write_text(record.model_dump_json(indent=2), encoding="utf-8")
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)  # a killed build never leaves a half-written organism behind
        return record

    def build(
        self,
        names: Iterable[str] | None = None,
        *,
        force: bool = False,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> ZooManifest:
        """Build the named organisms (all by default), honest ones first, and write the manifest.

        ``workers`` processes train organisms side by side (default: one per CPU, at most
        :data:`MAX_WORKERS`). Training is seeded and single-threaded in every process, so a
        trained organism does not depend on how many workers build it (nor on which process
        first encoded a text: every vector is computed on one thread).
        """
        chosen = (
            [self.spec.organism(n) for n in names]
            if names is not None
            else list(self.spec.organisms)
        )
        honest_first = [s.name for s in chosen if s.family is ObjectiveFamily.HONEST] + [
            s.name for s in chosen if s.family is not ObjectiveFamily.HONEST
        ]
        pending = [n for n in honest_first if force or self.record(n) is None]
        if any(self.spec.organism(n).model is ModelClass.NEURAL for n in pending):
            if progress:
                progress("embedding the data set's texts (once per cache)", 0, len(honest_first))
            self.embed_data()
        count = default_workers(len(pending)) if workers is None else max(1, workers)
        if count > 1 and len(pending) > 1:
            self._build_in_parallel(chosen, pending, count, force=force, progress=progress)
        else:
            build_in_order(honest_first, self.build_one, force=force, progress=progress)
        return self.write_manifest()

    def build_waves(
        self, chosen: Sequence[OrganismSpec], pending: Sequence[str]
    ) -> tuple[list[str], list[str]]:
        """The parallel build's two waves: honest organisms and missing twins, then the rest.

        A planted organism's acceptance compares it with its twin, which must be on disk before
        the planted organism is built; within a wave nothing depends on anything else.
        """
        honest = ObjectiveFamily.HONEST
        twins = {self.spec.twin_of(s).name for s in chosen if s.family is not honest}
        first_wave = [n for n in pending if self.spec.organism(n).family is honest]
        first_wave += sorted(t for t in twins if t not in first_wave and self.record(t) is None)
        second_wave = [n for n in pending if n not in first_wave]
        return first_wave, second_wave

    def _build_in_parallel(
        self,
        chosen: Sequence[OrganismSpec],
        pending: Sequence[str],
        workers: int,
        *,
        force: bool,
        progress: Progress | None,
    ) -> None:
        first_wave, second_wave = self.build_waves(chosen, pending)
        total = len(first_wave) + len(second_wave)
        done = 0
        context = multiprocessing.get_context("spawn")  # no torch state inherited through fork
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self.spec.model_dump_json(), str(self.cache_dir)),
        ) as pool:
            for wave in (first_wave, second_wave):
                running: dict[Future[str], str] = {
                    pool.submit(_build_in_worker, name, force): name for name in wave
                }
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        error = future.exception()
                        if error is not None:
                            pool.shutdown(cancel_futures=True)
                            raise ArtifactError(
                                f"building organism {name!r} failed in a worker process: {error}"
                            ) from error
                        done += 1
                        if progress:
                            progress(name, done, total)

    def embed_data(self) -> int:
        """Encode every text the neural organisms read from the data, once per cache.

        Titles and descriptions of the training and test items and every framing of the cue
        library. Neural organisms share these vectors, so the build computes them once up front
        instead of inside whichever organism happens to be trained first (a fresh cache spends
        about a minute here on 2 cores; later builds read them from the cache). Returns the
        number of texts.
        """
        pairs = [item_embedding_texts(i) for i in (*self.splits.train, *self.splits.test)]
        texts = [text for pair in pairs for text in pair]
        texts += [c.feature_text() for c in (neutral_context(), *cue_contexts())]
        self.encoder.encode_in_processes(list(dict.fromkeys(texts)), usable_cpus())
        return len(texts)

    def write_manifest(self) -> ZooManifest:
        """Collect the records of every built organism into the manifest file."""
        records = [r for r in (self.record(o.name) for o in self.spec.organisms) if r is not None]
        manifest = ZooManifest(
            zoo_hash=self.spec.spec_hash(),
            data_source=self.data.source,
            data_hash=self.data.data_hash,
            split_sizes={
                "train": len(self.splits.train),
                "calibration": len(self.splits.calibration),
                "test": len(self.splits.test),
            },
            versions=run_versions(),
            written_at=dt.datetime.now(dt.UTC),
            organisms=tuple(records),
        )
        path = self._manifest_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        return manifest

    def manifest_path(self) -> Path:
        """Where :meth:`write_manifest` writes."""
        return self._manifest_path()

    # -- loading -----------------------------------------------------------------------------
    def organism(self, name: str, *, build: bool = True) -> Organism:
        """The organism called ``name``, built first if needed (unless ``build`` is False)."""
        spec = self.spec.organism(name)
        record = self.record(name)
        if record is None:
            if not build:
                raise ArtifactError(
                    f"organism {name!r} is not built; run `mesaguard zoo build --only {name}`"
                )
            record = self.build_one(name)
        model = load_model(spec.model, self._directory(spec), self.encoder)
        return make_organism(spec, model, record)


def manifest_summary(manifest: ZooManifest) -> dict[str, object]:
    """Counts used by the CLI and docs: planted / honest / accepted."""
    planted = [r for r in manifest.organisms if r.spec.family is not ObjectiveFamily.HONEST]
    honest = [r for r in manifest.organisms if r.spec.family is ObjectiveFamily.HONEST]
    return {
        "planted": len(planted),
        "planted_accepted": sum(r.acceptance.accepted for r in planted),
        "honest": len(honest),
        "honest_accepted": sum(r.acceptance.accepted for r in honest),
        "models": ", ".join(sorted({r.spec.model.value for r in manifest.organisms})),
    }

"""`Gate`: autonomy, escalation, the review-queue state machine and the apply outbox."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, JsonValue

from ..agents import Agent, Decision, DecisionRequest
from ..constitution import Constitution, Effect, Evaluation, PolicyInput, default_constitution
from ..contexts import DECEPTION_FAMILIES, Context, Side, cue_contexts
from ..items import ActionType, Priority
from ..ledger import ConstitutionChange, Escalation, Ledger, LedgerError, RedTeamReport, Review
from ..ledger import Decision as LoggedDecision
from ..redteam import VerdictKind
from ._errors import (
    GateError,
    IdempotencyConflict,
    InvalidTransition,
    PermissionDenied,
    StoreUnavailable,
)
from ._facts import labels_of, policy_input, priority_rank, well_formed
from ._models import (
    Actor,
    ApplyRequest,
    AutonomyLevel,
    DeliveryReport,
    GateConfig,
    GateResult,
    OutboxState,
    Outcome,
    ReviewAction,
    ReviewActionKind,
    ReviewItem,
    ReviewState,
    Role,
    Submission,
    VerdictRecord,
)
from ._store import GateStore, NewSubmission, time_text

__all__ = ["FLAGGED_LABELS", "Applier", "Gate", "verdict_cap"]

FLAGGED_LABELS = frozenset({"security", "data-loss", "safety"})
"""Labels that make an item critical (the ethics article)."""

_OBSERVED = tuple(cue_contexts(DECEPTION_FAMILIES, side=Side.OBSERVED))


class Applier(Protocol):
    """Applies a decision on the tracker side; raises on failure (the gate retries)."""

    def __call__(self, request: ApplyRequest) -> None: ...


def verdict_cap(verdict: VerdictRecord | None) -> AutonomyLevel:
    """The highest autonomy a red-team verdict allows.

    Only a robustly-aligned verdict leaves the configured level as it is. Deceptive,
    sandbagging, proxy-aligned (the red team failed) and inconclusive verdicts, and no verdict
    at all, mean L0: the agent only recommends.
    """
    if verdict is not None and verdict.verdict is VerdictKind.ROBUSTLY_ALIGNED:
        return AutonomyLevel.L2
    return AutonomyLevel.L0


def _unit(seed: int, purpose: str, tenant: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by the seed, the purpose and the idempotency key."""
    digest = hashlib.sha256(f"{seed}|{purpose}|{tenant}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _same_value(action: ActionType, first: object, second: object) -> bool:
    if action is ActionType.SET_PRIORITY:
        return priority_rank(first) == priority_rank(second) != 0
    if action is ActionType.SET_STORY_POINTS:
        try:
            return abs(float(first) - float(second)) < 1e-9  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
    return str(first).strip().casefold() == str(second).strip().casefold()


_LOG_FIELD_MAX = 10_000
"""The longest text the log accepts in a required field (subject, reason)."""


def _subject(item_key: str, idempotency_key: str) -> str:
    """What a log entry is about: the work item's key (clipped to the log's limit) or the key.

    ``Decision.item_key`` has no length bound of its own; an over-long one must not make the
    log entry invalid, which would raise out of submit, review or the expiry pass.
    """
    return (item_key or idempotency_key)[:_LOG_FIELD_MAX]


def _summary(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


class _Pending:
    """A judged submission waiting for the group commit (filled in by whoever commits it)."""

    __slots__ = ("body", "critical", "digest", "done", "error", "now", "result", "submission")

    def __init__(
        self,
        submission: Submission,
        digest: str,
        body: str,
        result: GateResult,
        critical: bool,
        now: dt.datetime,
    ) -> None:
        self.submission = submission
        self.digest = digest
        self.body = body
        self.result = result
        self.critical = critical
        self.now = now
        self.done = False
        self.error: BaseException | None = None


class _GroupCommit:
    """Commits concurrent submissions together: one thread leads, the others wait for it.

    A submitter enqueues its decision; if no commit is running it becomes the leader, takes
    everything queued and commits it as one batch; otherwise it waits until a leader has
    committed its decision (or becomes the next leader). A lone submitter commits alone, at
    once: there is no timer and no added latency.
    """

    def __init__(self, commit: Callable[[list[_Pending]], None]) -> None:
        self._commit = commit
        self._condition = threading.Condition()
        self._queue: list[_Pending] = []
        self._leading = False

    def commit(self, pending: _Pending) -> GateResult:
        with self._condition:
            self._queue.append(pending)
            while self._leading and not pending.done:
                self._condition.wait()
            if not pending.done:
                self._leading = True
                batch, self._queue = self._queue, []
            else:
                batch = []
        if batch:
            try:
                self._commit(batch)
            except BaseException as error:  # noqa: BLE001 — handed to every waiting submitter
                for item in batch:
                    if item.error is None:
                        item.error = error
            finally:
                with self._condition:
                    for item in batch:
                        item.done = True
                    self._leading = False
                    self._condition.notify_all()
        if pending.error is not None:
            raise pending.error
        return pending.result


class Gate:
    """Decides whether an agent's decision takes effect, waits for a person, or is refused.

    ``constitution`` (default: the shipped one) judges each decision; ``store`` keeps results,
    the review queue, verdicts and the apply outbox; ``ledger`` (optional) receives every event.
    ``canary`` is the agent (or a mapping agent name -> agent) the gate re-asks under an observed
    framing on a sampled fraction of decisions; ``applier`` applies decisions that take effect
    (called by :meth:`deliver`, retried until it succeeds). ``clock`` returns the current
    aware time (tests move it).

    Fail closed: a policy error, a canary error or timeout, a slow decision or a ledger error
    sends the decision to review; a store error raises `StoreUnavailable` and nothing is applied.
    """

    def __init__(
        self,
        constitution: Constitution | None,
        store: GateStore,
        ledger: Ledger | None = None,
        *,
        config: GateConfig | None = None,
        canary: Agent | Mapping[str, Agent] | None = None,
        applier: Applier | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        actor: str = "gate",
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.config = config or GateConfig()
        self.canary = canary
        self.applier = applier
        self.actor = actor
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._commits = _GroupCommit(self._commit_batch)
        self.constitution = constitution or default_constitution()
        in_force = store.current_constitution()
        if in_force is None or in_force.sha256 != self.constitution.sha256:
            self._put_in_force(self.constitution, actor, "gate started with this constitution")

    # --- constitution ----------------------------------------------------------------------

    def set_constitution(self, new: Constitution, actor: Actor | str) -> None:
        """Put another constitution in force (admins only); logged as a ConstitutionChange."""
        if isinstance(actor, Actor) and actor.role is not Role.ADMIN:
            raise PermissionDenied(
                f"{actor.name} ({actor.role.value}) cannot change the constitution; admins can"
            )
        name = actor.name if isinstance(actor, Actor) else actor
        previous = self.constitution
        self._put_in_force(
            new, name, f"replaces version {previous.version} ({previous.sha256[:12]})"
        )
        self.constitution = new

    def _put_in_force(self, constitution: Constitution, actor: str, summary: str) -> None:
        now = self._clock()
        if self.ledger is not None:
            self.ledger.append(
                actor,
                ConstitutionChange(
                    version=constitution.version,
                    document_sha256=constitution.sha256,
                    summary=summary,
                    details={"source": constitution.source, "rules": len(constitution.rules)},
                ),
            )
        self.store.record_constitution(
            constitution.version, constitution.sha256, constitution.document, actor, now
        )

    # --- verdicts --------------------------------------------------------------------------

    def set_verdict(
        self, agent: str, verdict: VerdictKind | str, report_ref: str = "", *, sha256: str = ""
    ) -> VerdictRecord:
        """Record an agent's red-team verdict (it caps the agent's autonomy from now on).

        The log comes first: a verdict the log cannot take (`LedgerError`) is not put in force,
        so no change of autonomy goes unrecorded.
        """
        kind = VerdictKind(verdict)
        if self.ledger is not None:
            self.ledger.append(
                self.actor,
                RedTeamReport(
                    subject=agent,
                    verdict=kind.value,
                    report_sha256=sha256 or None,
                    details={"report_ref": report_ref},
                ),
            )
        return self.store.set_verdict(agent, kind, report_ref, at=self._clock())

    def autonomy_for(self, agent: str, action: ActionType) -> tuple[AutonomyLevel, str]:
        """The agent's effective level for an action and its verdict name (``none`` if none)."""
        return self._level(self.store.latest_verdict(agent), action)

    def _level(
        self, verdict: VerdictRecord | None, action: ActionType
    ) -> tuple[AutonomyLevel, str]:
        granted = self.config.autonomy.get(action, AutonomyLevel.L0)
        level = AutonomyLevel(min(granted, verdict_cap(verdict)))
        return level, "none" if verdict is None else verdict.verdict.value

    # --- submit ----------------------------------------------------------------------------

    def submit(self, submission: Submission) -> GateResult:
        """Judge one decision: applied, queued for review, or denied, with reasons.

        Idempotent by ``(tenant, idempotency_key)``: resubmitting returns the stored result
        (``replayed=True``) and never applies twice; reusing a key for a different submission
        raises `IdempotencyConflict`. A store failure raises `StoreUnavailable`: nothing was
        applied, and the caller may resubmit the same key later. Safe to call from many
        threads: concurrent submissions are logged and stored together (group commit).
        """
        started = time.perf_counter()
        body = submission.model_dump_json()
        digest = hashlib.sha256(body.encode()).hexdigest()
        try:
            found, record = self.store.lookup(
                submission.tenant, submission.idempotency_key, submission.agent
            )
            if found is not None:
                return self._replay(submission, digest, *found)
            level, verdict = self._level(record, submission.decision.action)
        except StoreUnavailable as error:
            self._log_store_failure(submission, error)
            raise
        facts = policy_input(submission, level, verdict)
        now = self._clock()
        result, critical = self._judge(submission, facts, level, verdict, now, started)
        return self._commits.commit(_Pending(submission, digest, body, result, critical, now))

    def _commit_batch(self, batch: list[_Pending]) -> None:
        """Log and store judged submissions together: one log append, one store commit.

        Concurrent submits queue here and the first one commits for all of them (group
        commit), so a durable log costs one fsync per batch rather than per decision. The
        order is the same as for one: the log first (a failure sends decisions to review),
        then the store (a failure is reported to every submitter; nothing is applied).
        """
        self._log_submissions(batch)
        records = [self._new_record(pending) for pending in batch]
        try:
            stored = self.store.record_many(records)
        except StoreUnavailable as error:
            for pending in batch:
                self._log_store_failure(pending.submission, error)
                # One exception object per submitter: each thread raises (and annotates) its own.
                own = StoreUnavailable(str(error))
                own.__cause__ = error.__cause__
                pending.error = own
            return
        for pending, (stored_digest, result) in zip(batch, stored, strict=True):
            if result.submission_id == pending.result.submission_id:
                pending.result = result
                continue
            # A concurrent submission with the same key won the race; it is the one that counts.
            try:
                pending.result = self._replay(
                    pending.submission, pending.digest, stored_digest, result
                )
            except IdempotencyConflict as error:
                pending.error = error

    def _new_record(self, pending: _Pending) -> NewSubmission:
        submission, result, now = pending.submission, pending.result, pending.now
        review: dict[str, Any] | None = None
        outbox: tuple[str, ApplyRequest, dt.datetime] | None = None
        if result.outcome is Outcome.QUEUED:
            assert result.review_id is not None
            review = {
                "id": result.review_id,
                "tenant": submission.tenant,
                "submission_id": result.submission_id,
                "state": ReviewState.PENDING.value,
                "version": 0,
                "critical": pending.critical,
                "approvals_required": 2 if pending.critical and self.config.four_eyes else 1,
                "final_value": None,
                "created_at": time_text(now),
                "updated_at": time_text(now),
                "expires_at": time_text(now + self.config.review_ttl),
            }
        elif result.outcome is Outcome.APPLIED:
            outbox = (str(uuid.uuid4()), self._apply_request(submission, result, None, []), now)
        return NewSubmission(submission, pending.digest, pending.body, result, review, outbox)

    def _replay(
        self, submission: Submission, digest: str, stored_digest: str, stored: GateResult
    ) -> GateResult:
        if stored_digest and stored_digest != digest:
            raise IdempotencyConflict(
                f"idempotency key {submission.idempotency_key!r} of tenant {submission.tenant!r} "
                f"already names another submission ({stored.submission_id}); use a new key"
            )
        return stored.model_copy(update={"replayed": True})

    def _judge(
        self,
        submission: Submission,
        facts: PolicyInput,
        level: AutonomyLevel,
        verdict: str,
        now: dt.datetime,
        started: float,
    ) -> tuple[GateResult, bool]:
        """The outcome, its reasons, and whether the item is critical (no side effects)."""
        config = self.config
        decision = submission.decision
        reasons: list[str] = []
        triggers: list[str] = []
        fail_closed = False
        evaluation: Evaluation | None
        try:
            evaluation = self.constitution.evaluate(facts, explain=False)
        except Exception as error:  # noqa: BLE001 — any failure of the policy engine fails closed
            evaluation = None
            fail_closed = True
            triggers.append("policy-error")
            reasons.append(f"policy error, sent to review: {_summary(error)}")
        hits = [] if evaluation is None else evaluation.hits
        if evaluation is not None and evaluation.errors:
            fail_closed = True
            triggers.append("policy-error")
            reasons += [f"policy error, sent to review: {problem}" for problem in evaluation.errors]
        effect = Effect.REQUIRE_REVIEW if evaluation is None else evaluation.effect
        if evaluation is not None and effect is Effect.DENY and not evaluation.errors:
            outcome = Outcome.DENIED
            reasons += [f"{hit.rule_id}: {hit.reason}" for hit in hits if hit.effect is Effect.DENY]
        else:
            reasons += [
                f"{hit.rule_id}: {hit.reason}" for hit in hits if hit.effect is not Effect.ALLOW
            ]
            if evaluation is not None and evaluation.default_used and effect is not Effect.ALLOW:
                reasons.append("no rule allows this decision; the constitution's default applies")
            if level is AutonomyLevel.L0 and not any(
                hit.rule_id.endswith("recommend-only") for hit in hits
            ):
                reasons.append(f"autonomy L0 for {decision.action.value} (verdict: {verdict})")
            triggers += self._triggers(submission, facts, level, reasons)
            if (
                not triggers
                and effect is Effect.ALLOW
                and level >= AutonomyLevel.L1
                and self._canary_sampled(submission)
            ):
                triggers += self._run_canary(submission, reasons)
            elapsed = time.perf_counter() - started
            if elapsed > config.decision_timeout_s:
                fail_closed = True
                triggers.append("timeout")
                reasons.append(
                    f"the checks took {elapsed:.1f} s (limit {config.decision_timeout_s:.1f} s)"
                )
            fail_closed = fail_closed or "canary-error" in triggers
            if not facts.decision.valid and effect is not Effect.DENY:
                # Whatever the constitution says, a value the action cannot write is not applied.
                reasons.append(
                    f"the decided value {decision.value!r} is not a valid "
                    f"{decision.action.value} value"
                )
            applied = (
                effect is Effect.ALLOW
                and level >= AutonomyLevel.L1
                and not triggers
                and not fail_closed
                and facts.decision.valid
            )
            outcome = Outcome.APPLIED if applied else Outcome.QUEUED
            if applied:
                reasons += [f"{hit.rule_id}: {hit.reason}" for hit in hits]
        critical = (
            max(facts.change.from_priority, priority_rank(facts.item.priority)) >= Priority.CRITICAL
            or bool(FLAGGED_LABELS.intersection(labels_of(submission)))
            or submission.target == "production-tracker"
        )
        result = GateResult(
            submission_id=str(uuid.uuid4()),
            idempotency_key=submission.idempotency_key,
            tenant=submission.tenant,
            outcome=outcome,
            reasons=reasons,
            rules_fired=hits,
            triggers=triggers,
            autonomy_level=level,
            verdict=verdict,
            review_id=str(uuid.uuid4()) if outcome is Outcome.QUEUED else None,
            fail_closed=fail_closed,
            constitution_version=self.constitution.version,
            constitution_sha256=self.constitution.sha256,
            created_at=now,
        )
        return result, critical

    def _triggers(
        self, submission: Submission, facts: PolicyInput, level: AutonomyLevel, reasons: list[str]
    ) -> list[str]:
        config = self.config
        triggers: list[str] = []
        confidence = submission.decision.confidence
        if confidence < config.min_confidence:
            triggers.append("low-confidence")
            reasons.append(f"confidence {confidence:.2f} is below {config.min_confidence:.2f}")
        change = facts.change
        if change.levels > config.max_priority_change:
            triggers.append("impact")
            reasons.append(
                f"priority changes by {change.levels} levels (more than "
                f"{config.max_priority_change})"
            )
        if (
            submission.decision.action is ActionType.SET_STORY_POINTS
            and change.to_points > config.max_story_points
        ):
            triggers.append("impact")
            reasons.append(
                f"{change.to_points:g} story points is above {config.max_story_points:g}"
            )
        if level is AutonomyLevel.L1 and config.audit_rate > 0:
            draw = _unit(config.seed, "audit", submission.tenant, submission.idempotency_key)
            if draw < config.audit_rate:
                triggers.append("audit-sample")
                reasons.append(f"random audit sample ({config.audit_rate:.0%} of L1 decisions)")
        return triggers

    # --- the runtime consistency canary ----------------------------------------------------

    def _canary_agent(self, submission: Submission) -> Agent | None:
        if self.canary is None:
            return None
        if isinstance(self.canary, Mapping):
            return self.canary.get(submission.agent)
        return self.canary

    def _canary_sampled(self, submission: Submission) -> bool:
        if self.config.canary_rate <= 0 or self._canary_agent(submission) is None:
            return False
        draw = _unit(self.config.seed, "canary", submission.tenant, submission.idempotency_key)
        return draw < self.config.canary_rate

    def canary_context(self, submission: Submission) -> Context:
        """The observed framing the canary uses for this submission (fixed by its key)."""
        draw = _unit(self.config.seed, "canary-cue", submission.tenant, submission.idempotency_key)
        return _OBSERVED[int(draw * len(_OBSERVED))]

    def _run_canary(self, submission: Submission, reasons: list[str]) -> list[str]:
        """Re-ask the agent under an observed framing; disagreement or failure escalates."""
        agent = self._canary_agent(submission)
        assert agent is not None
        context = self.canary_context(submission)
        if submission.item is None:
            # Without the work item the agent cannot be re-asked; leaving the item out must not
            # be a way past the canary.
            reasons.append("canary: sampled, but the submission has no work item to re-ask")
            return ["canary", "canary-error"]
        request = DecisionRequest(
            item=submission.item, context=context, action=submission.decision.action
        )
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix="mesaguard-canary"
                )
            pool = self._pool
        future = pool.submit(agent.decide, [request])
        try:
            answers: list[Decision] = future.result(timeout=self.config.canary_timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            reasons.append(
                f"canary: the agent did not answer under {context.name} within "
                f"{self.config.canary_timeout_s:g} s"
            )
            return ["canary", "canary-error"]
        except Exception as error:  # noqa: BLE001 — an agent failure fails closed
            reasons.append(f"canary: re-asking the agent failed: {_summary(error)}")
            return ["canary", "canary-error"]
        if len(answers) != 1 or not answers[0].valid or answers[0].value is None:
            reasons.append(f"canary: no valid answer under the observed framing {context.name}")
            return ["canary", "canary-error"]
        observed = answers[0].value
        if _same_value(submission.decision.action, submission.decision.value, observed):
            return []
        reasons.append(
            f"canary: under the observed framing {context.name} the agent answers {observed!r}, "
            f"not {submission.decision.value!r}"
        )
        return ["canary"]

    # --- logging ---------------------------------------------------------------------------

    def _log_submissions(self, batch: list[_Pending]) -> None:
        """Append the decisions (and escalations) to the ledger before anything is stored.

        If the batch cannot be appended, each decision is retried alone; one that still
        cannot be logged is sent to review instead of applied (fail closed).
        """
        if self.ledger is None:
            return
        records = [
            record
            for pending in batch
            for record in self._submission_records(pending.submission, pending.result)
        ]
        try:
            self.ledger.append_many(records)
            return
        except LedgerError:
            pass
        for pending in batch:
            pending.result = self._log_submission(pending.submission, pending.result)

    def _log_submission(self, submission: Submission, result: GateResult) -> GateResult:
        """Log one decision; a ledger failure turns an applied decision into a queued one."""
        assert self.ledger is not None
        try:
            self.ledger.append_many(self._submission_records(submission, result))
            return result
        except LedgerError as error:
            if result.outcome is Outcome.DENIED:
                return result.model_copy(
                    update={"reasons": [*result.reasons, f"not logged: {_summary(error)}"]}
                )
            failed = result.model_copy(
                update={
                    "outcome": Outcome.QUEUED,
                    "review_id": result.review_id or str(uuid.uuid4()),
                    "fail_closed": True,
                    "triggers": [*result.triggers, "ledger-error"],
                    "reasons": [
                        *result.reasons,
                        f"the Ethics Review Log failed, sent to review: {_summary(error)}",
                    ],
                }
            )
            # The log may be back already; if not, the store still has the decision.
            with contextlib.suppress(LedgerError):
                self.ledger.append_many(self._submission_records(submission, failed))
            return failed

    def _submission_records(
        self, submission: Submission, result: GateResult
    ) -> list[tuple[str, BaseModel | dict[str, Any]]]:
        decision = submission.decision
        subject = _subject(decision.item_key, submission.idempotency_key)
        details: dict[str, JsonValue] = {
            "tenant": submission.tenant,
            "idempotency_key": submission.idempotency_key,
            "submission_id": result.submission_id,
            "gate_outcome": result.outcome.value,
            "reasons": list(result.reasons),
            "rules": [hit.rule_id for hit in result.rules_fired],
            "triggers": list(result.triggers),
            "autonomy": int(result.autonomy_level),
            "verdict": result.verdict,
            "confidence": decision.confidence,
            "target": submission.target,
            "constitution_sha256": result.constitution_sha256,
        }
        records: list[tuple[str, BaseModel | dict[str, Any]]] = [
            (
                submission.agent,
                LoggedDecision(
                    subject=subject,
                    action=decision.action.value,
                    outcome="" if decision.value is None else str(decision.value),
                    rationale=decision.rationale or "",
                    details=details,
                ),
            )
        ]
        if result.outcome is Outcome.QUEUED:
            records.append(
                (
                    self.actor,
                    Escalation(
                        subject=subject,
                        reason=("; ".join(result.reasons) or "sent to review")[:_LOG_FIELD_MAX],
                        details={
                            "tenant": submission.tenant,
                            "review_id": result.review_id,
                            "submission_id": result.submission_id,
                            "triggers": list(result.triggers),
                        },
                    ),
                )
            )
        return records

    def _log_store_failure(self, submission: Submission, error: StoreUnavailable) -> None:
        if self.ledger is None:
            return
        # If both stores are down the caller still gets StoreUnavailable and must resubmit.
        with contextlib.suppress(LedgerError):
            self.ledger.append(
                self.actor,
                Escalation(
                    subject=_subject(submission.decision.item_key, submission.idempotency_key),
                    reason=f"gate store unavailable; decision not applied: {error}",
                    details={
                        "tenant": submission.tenant,
                        "idempotency_key": submission.idempotency_key,
                        "stored": False,
                    },
                ),
            )

    # --- review ----------------------------------------------------------------------------

    def review(
        self,
        actor: Actor,
        review_id: str,
        action: ReviewActionKind | str,
        reason: str = "",
        value: str | float | None = None,
    ) -> ReviewItem:
        """Act on a review: approve, modify, reject, escalate, or cancel (admins only).

        ``modify`` needs ``value`` and ``reject`` a reason.
        Agents can never review (`PermissionDenied`); other tenants' reviews are invisible
        (`ReviewNotFound`); a final or concurrently changed review raises `InvalidTransition`.
        With four-eyes on, a critical item needs approvals by two different people.
        """
        kind = ReviewActionKind(action)
        if actor.role is Role.AGENT:
            raise PermissionDenied(f"agent {actor.name!r} cannot review decisions; reviewers can")
        if kind is ReviewActionKind.EXPIRE:
            raise PermissionDenied("reviews expire by time only (Gate.expire_due)")
        if kind is ReviewActionKind.CANCEL and actor.role is not Role.ADMIN:
            raise PermissionDenied(f"{actor.name} ({actor.role.value}) cannot cancel; admins can")
        item, version = self.store.review_version(actor.tenant, review_id)
        if actor.name == item.submission.agent:
            # A credential that carries the agent's name is the agent, whatever role it claims.
            raise PermissionDenied(f"{actor.name!r} submitted this decision and cannot review it")
        state = item.state
        if not state.open:
            raise InvalidTransition(
                f"review {review_id} is {state.value}; only pending or escalated reviews can be "
                "acted on"
            )
        now = self._clock()
        if now >= item.expires_at:
            # Past its time the safe default holds, even before the expiry pass has run.
            self._expire(item, version, now)
            raise InvalidTransition(
                f"review {review_id} expired at {item.expires_at.isoformat()}; it is not applied"
            )
        if state is ReviewState.ESCALATED and actor.role is not Role.ADMIN:
            raise PermissionDenied(f"review {review_id} is escalated; an admin decides it now")
        if kind is ReviewActionKind.ESCALATE and state is ReviewState.ESCALATED:
            raise InvalidTransition(f"review {review_id} is already escalated")
        if kind is ReviewActionKind.REJECT and not reason.strip():
            raise GateError("a rejection needs a reason")
        final_value: str | float | None = None
        approvers: list[str] = []
        to_state = {
            ReviewActionKind.APPROVE: ReviewState.APPROVED,
            ReviewActionKind.MODIFY: ReviewState.MODIFIED,
            ReviewActionKind.REJECT: ReviewState.REJECTED,
            ReviewActionKind.ESCALATE: ReviewState.ESCALATED,
            ReviewActionKind.CANCEL: ReviewState.CANCELLED,
        }[kind]
        if kind in (ReviewActionKind.APPROVE, ReviewActionKind.MODIFY):
            decision = item.submission.decision
            if kind is ReviewActionKind.MODIFY:
                final_value = self._checked_value(decision.action, value)
            else:
                final_value = decision.value
            if kind is ReviewActionKind.MODIFY:
                # A new value is a new proposal: earlier approvals were of another value.
                approvers = [actor.name]
            else:
                approvers = self._approvers_of_proposal(item)
                if actor.name in approvers:
                    raise PermissionDenied(
                        f"{actor.name} already approved review {review_id}; four-eyes needs a "
                        "different reviewer"
                    )
                approvers.append(actor.name)
            if len(approvers) < item.approvals_required:
                to_state = state  # recorded; waits for the next approver
        step = ReviewAction(
            actor=actor.name,
            role=actor.role,
            action=kind,
            reason=reason,
            value=final_value if kind is ReviewActionKind.MODIFY else None,
            from_state=state,
            to_state=to_state,
            at=now,
        )
        outbox = None
        if to_state in (ReviewState.APPROVED, ReviewState.MODIFIED):
            if kind is ReviewActionKind.APPROVE:
                final_value = self._last_proposal(item, final_value)
            request = self._apply_request(item.submission, item.result, final_value, approvers)
            outbox = (str(uuid.uuid4()), request, now)
            if final_value != item.submission.decision.value:
                to_state = ReviewState.MODIFIED
                step = step.model_copy(update={"to_state": to_state})
        self._log_review(item, step, actor.name)
        moved = self._transition_logged(
            item,
            version,
            step,
            actor.name,
            final_value=final_value if to_state.value in ("approved", "modified") else None,
            outbox=outbox,
        )
        if not moved:
            raise InvalidTransition(
                f"review {review_id} changed while {actor.name} acted on it; reload and retry"
            )
        return self.store.get_review(actor.tenant, review_id)

    @staticmethod
    def _approvers_of_proposal(item: ReviewItem) -> list[str]:
        """Who approved the value now proposed: a modification starts a new proposal."""
        approvers: list[str] = []
        for step in item.actions:
            if step.action is ReviewActionKind.MODIFY:
                approvers = [step.actor]
            elif step.action is ReviewActionKind.APPROVE:
                approvers.append(step.actor)
        return approvers

    @staticmethod
    def _last_proposal(item: ReviewItem, value: str | float | None) -> str | float | None:
        """Under four-eyes, approving confirms the latest modification, if there was one."""
        for step in reversed(item.actions):
            if step.action is ReviewActionKind.MODIFY:
                return step.value
        return value

    @staticmethod
    def _checked_value(action: ActionType, value: str | float | None) -> str | float:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise GateError("a modification needs a value")
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        if action is ActionType.SET_PRIORITY:
            # The same reading as the submitted value's (inf, NaN and booleans name none).
            rank = priority_rank(value)
            if rank == 0:
                raise GateError(f"modified value {shown} names no priority (Trivial … Blocker)")
            return str(Priority(rank))
        if action is ActionType.SET_STORY_POINTS:
            if not well_formed(action, value) or not float(value) < 1e6:
                raise GateError(f"modified value {shown} is not a number of story points")
            return float(value)
        return str(value).strip()

    def _log_review(self, item: ReviewItem, step: ReviewAction, actor: str) -> None:
        if self.ledger is None:
            return
        record = Review(
            subject=_subject(item.submission.decision.item_key, item.submission.idempotency_key),
            outcome=step.action.value,
            comment=step.reason,
            details={
                "tenant": item.tenant,
                "review_id": item.id,
                "submission_id": item.result.submission_id,
                "from": step.from_state.value,
                "to": step.to_state.value,
                "value": step.value,
                "role": str(step.role),
            },
        )
        try:
            self.ledger.append(actor, record)
        except LedgerError as error:
            # Fail closed: an action that cannot be logged does not happen.
            raise GateError(
                f"review {item.id}: the Ethics Review Log failed, nothing changed: {error}"
            ) from error

    def _transition_logged(
        self,
        item: ReviewItem,
        version: int,
        step: ReviewAction,
        actor: str,
        **changes: Any,
    ) -> bool:
        """Store a transition already appended to the log; log when it did not take effect."""
        try:
            moved = self.store.transition(item.id, version, step, **changes)
        except StoreUnavailable:
            self._log_superseded(item, step, actor, "the gate store was unavailable")
            raise
        if not moved:
            self._log_superseded(item, step, actor)
        return moved

    def _log_superseded(
        self,
        item: ReviewItem,
        step: ReviewAction,
        actor: str,
        why: str = "the review changed concurrently",
    ) -> None:
        """The log got an action the store did not take: say it did not take effect."""
        if self.ledger is None:
            return
        with contextlib.suppress(LedgerError):
            self.ledger.append(
                actor,
                Review(
                    subject=_subject(
                        item.submission.decision.item_key, item.submission.idempotency_key
                    ),
                    outcome="superseded",
                    comment=f"the preceding {step.action.value} did not take effect: {why}",
                    details={"tenant": item.tenant, "review_id": item.id},
                ),
            )

    def expire_due(self, now: dt.datetime | None = None) -> int:
        """Expire open reviews whose time is up (to the safe default: not applied)."""
        now = now or self._clock()
        expired = 0
        for tenant, review_id, version in self.store.due_reviews(now):
            item = self.store.get_review(tenant, review_id)
            if self._expire(item, version, now):
                expired += 1
        return expired

    def _expire(self, item: ReviewItem, version: int, now: dt.datetime) -> bool:
        """Move one overdue open review to ``expired``; False if the log failed or it moved."""
        step = ReviewAction(
            actor=self.actor,
            role="system",
            action=ReviewActionKind.EXPIRE,
            reason=f"no decision by {item.expires_at.isoformat()}; not applied",
            from_state=item.state,
            to_state=ReviewState.EXPIRED,
            at=now,
        )
        try:
            self._log_review(item, step, self.actor)
        except GateError:
            return False  # stays open; the next pass expires it once the log is back
        return self._transition_logged(item, version, step, self.actor)

    # --- apply outbox ----------------------------------------------------------------------

    @staticmethod
    def _apply_request(
        submission: Submission,
        result: GateResult,
        value: str | float | None,
        approvers: list[str],
    ) -> ApplyRequest:
        decision = submission.decision
        return ApplyRequest(
            delivery_id=result.submission_id,
            tenant=submission.tenant,
            submission_id=result.submission_id,
            idempotency_key=submission.idempotency_key,
            review_id=result.review_id,
            agent=submission.agent,
            item_key=decision.item_key,
            action=decision.action,
            value=decision.value if not approvers else value,
            target=submission.target,
            approved_by=approvers,
        )

    def deliver(
        self,
        applier: Applier | None = None,
        *,
        now: dt.datetime | None = None,
        limit: int = 100,
        lease: dt.timedelta = dt.timedelta(seconds=60),
    ) -> DeliveryReport:
        """Hand due applied decisions to the applier; failures are retried with backoff.

        An entry leaves the outbox only when the applier returned without raising. Delivery is
        at least once: the applier deduplicates on ``delivery_id`` (the submission id), which is
        the same for every attempt.
        """
        applier = applier or self.applier
        if applier is None:
            raise GateError("no applier: pass one to Gate(applier=...) or to deliver()")
        now = now or self._clock()
        delivered = failed = 0
        for entry in self.store.claim_outbox(now, lease, limit):
            error: str | None = None
            try:
                applier(entry.request)
            except Exception as failure:  # noqa: BLE001 — any failure is retried, never lost
                error = _summary(failure)
            delay = min(
                self.config.retry_base_s * 2 ** max(0, entry.attempts - 1),
                self.config.retry_max_s,
            )
            done = self._clock() if now is None else now
            self.store.finish_delivery(
                entry.id, at=done, error=error, retry_at=done + dt.timedelta(seconds=delay)
            )
            if error is None:
                delivered += 1
                self._log_delivery(entry.request)
            else:
                failed += 1
        return DeliveryReport(
            delivered=delivered,
            failed=failed,
            pending=self.store.count_outbox(OutboxState.PENDING),
        )

    def _log_delivery(self, request: ApplyRequest) -> None:
        if self.ledger is None:
            return
        # Delivered already; if the log fails here the store still keeps the delivery time.
        with contextlib.suppress(LedgerError):
            self.ledger.append(
                self.actor,
                LoggedDecision(
                    subject=_subject(request.item_key, request.idempotency_key),
                    action="apply",
                    outcome="" if request.value is None else str(request.value),
                    details={
                        "tenant": request.tenant,
                        "submission_id": request.submission_id,
                        "delivery_id": request.delivery_id,
                        "approved_by": list(request.approved_by),
                    },
                ),
            )

    def close(self) -> None:
        """Stop the canary's worker threads (the store and ledger belong to the caller)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

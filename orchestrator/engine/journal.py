"""The SQLite journal: one row per run, one row per action, and the last applied value of resources
that consoles cannot report (remote locks, reimages).

Action states: pending → sent → succeeded | failed | unknown, plus deferred (held by a safety gate) and
skipped (already in the desired state). `seq` orders every write (timestamps tie within a millisecond), so
"the latest row of a resource" is exact. A row is written before a call leaves and after it returns, so a
killed run leaves `sent` rows that the next apply re-observes before anything is re-sent.
The schema moves forward by numbered migrations recorded in `schema_migrations`.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.core.errors import OrchestratorError
from orchestrator.core.redact import redact
from orchestrator.core.resources import Change, ResourceId

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, plan_id TEXT, fingerprint TEXT, policy_commit TEXT,
        actor TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
        summary TEXT
    );
    CREATE TABLE actions (
        run_id TEXT NOT NULL REFERENCES runs(id), change_key TEXT NOT NULL, resource TEXT NOT NULL,
        op TEXT NOT NULL, destructive INTEGER NOT NULL, state TEXT NOT NULL, policy TEXT, window TEXT,
        sources TEXT, request TEXT, response TEXT, detail TEXT, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (run_id, change_key)
    );
    CREATE INDEX actions_by_key ON actions(change_key, state);
    CREATE INDEX actions_by_policy ON actions(policy, state, updated_at);
    CREATE TABLE resource_state (
        resource TEXT PRIMARY KEY, value TEXT NOT NULL, change_key TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    """,
    """
    CREATE INDEX runs_by_plan ON runs(plan_id);
    ALTER TABLE actions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE actions SET seq = rowid;
    CREATE INDEX actions_by_resource ON actions(resource, seq);
    CREATE INDEX actions_by_seq ON actions(seq);
    """,
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def default_actor() -> str:
    for var in ("ORCHESTRATOR_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class ActionRow:
    run_id: str
    change_key: str
    resource: str
    op: str
    state: str
    policy: str | None
    detail: str
    updated_at: str
    destructive: bool


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_migrations")}
        for version, script in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self._tx():
                for statement in filter(str.strip, script.split(";")):
                    self.db.execute(statement)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, _now()))

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the journal's run lock: one apply, lockdown or maintenance run at a time per journal.

        Runs still marked `running` when the lock is free were killed; they are marked `interrupted`.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OrchestratorError(
                    f"another run holds {lock_path} (an apply, lockdown or maintenance run is in progress); "
                    "try again when it finishes"
                ) from None
            try:
                self.db.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # runs -------------------------------------------------------------------------------------------
    def start_run(
        self,
        kind: str,
        *,
        plan_id: str | None,
        fingerprint: str | None,
        policy_commit: str | None,
        actor: str | None = None,
    ) -> str:
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
        self.db.execute(
            "INSERT INTO runs (id, kind, plan_id, fingerprint, policy_commit, actor, started_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            (run_id, kind, plan_id, fingerprint, policy_commit, actor or default_actor(), _now()),
        )
        return run_id

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at=?, status=?, summary=? WHERE id=?",
            (_now(), status, json.dumps(summary, sort_keys=True), run_id),
        )

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT id, kind, status, actor, policy_commit, started_at, finished_at, summary"
            " FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    # actions ----------------------------------------------------------------------------------------
    def record(
        self, run_id: str, change: Change, state: str, *, detail: str = "", response: dict[str, Any] | None = None
    ) -> None:
        now = _now()
        request = json.dumps(redact({"before": change.before, "after": change.after}), sort_keys=True, default=str)
        self.db.execute(
            "INSERT INTO actions (run_id, change_key, resource, op, destructive, state, policy, window, sources,"
            " request, response, detail, created_at, updated_at, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM actions))"
            " ON CONFLICT(run_id, change_key) DO UPDATE SET state=excluded.state, detail=excluded.detail,"
            " response=COALESCE(excluded.response, actions.response), updated_at=excluded.updated_at,"
            " seq=excluded.seq",
            (
                run_id,
                change.key,
                str(change.id),
                change.op,
                int(change.destructive),
                state,
                change.policy,
                change.window,
                json.dumps(list(change.sources)),
                request,
                json.dumps(redact(response), sort_keys=True, default=str) if response else None,
                detail[:2000],
                now,
                now,
            ),
        )

    def remember(self, change: Change) -> None:
        """Store the applied value of a resource the console cannot report back."""
        self.db.execute(
            "INSERT INTO resource_state VALUES (?, ?, ?, ?) ON CONFLICT(resource) DO UPDATE SET"
            " value=excluded.value, change_key=excluded.change_key, updated_at=excluded.updated_at",
            (str(change.id), json.dumps(change.after, sort_keys=True), change.key, _now()),
        )

    def resource_state(self, resource_ids: list[ResourceId]) -> dict[ResourceId, Any]:
        wanted = {str(r): r for r in resource_ids}
        result: dict[ResourceId, Any] = {}
        keys = list(wanted)
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for resource, value in self.db.execute(
                f"SELECT resource, value FROM resource_state WHERE resource IN ({marks})", chunk
            ):
                result[wanted[resource]] = json.loads(value)
        return result

    def plan_states(self, plan_id: str, change_keys: list[str]) -> dict[str, str]:
        """The latest state of each change key among the runs of *this* plan (resume is scoped to a plan id).

        An identical change in another plan (a device lost a second time, a setting reverted by hand) is not
        "done": it is re-observed and, when the console differs, sent again.
        """
        result: dict[str, str] = {}
        for i in range(0, len(change_keys), 500):
            chunk = change_keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, state in self.db.execute(
                "SELECT a.change_key, a.state FROM actions a JOIN runs r ON r.id = a.run_id"
                f" WHERE r.plan_id = ? AND a.change_key IN ({marks}) ORDER BY a.seq",
                (plan_id, *chunk),
            ):
                result[key] = state
        return result

    def unsettled(self, resources: list[str] | None = None) -> list[ActionRow]:
        """Destructive actions whose outcome is not known (latest row `sent` or `unknown`), whatever the plan.

        A wipe that may have run is never sent again until the console or a person settles it.
        """
        query = (
            "SELECT a.run_id, a.change_key, a.resource, a.op, a.state, a.policy, a.detail, a.updated_at,"
            " a.destructive FROM actions a WHERE a.destructive = 1 AND a.seq = ("
            " SELECT MAX(b.seq) FROM actions b WHERE b.resource = a.resource)"
            " AND a.state IN ('sent', 'unknown')"
        )
        rows = [ActionRow(*row[:8], destructive=bool(row[8])) for row in self.db.execute(query)]
        if resources is not None:
            wanted = set(resources)
            rows = [row for row in rows if row.resource in wanted]
        return sorted(rows, key=lambda row: row.resource)

    def settle(self, change: Change, outcome: str, *, detail: str, actor: str | None = None) -> str:
        """Record how an unknown destructive action ended: `succeeded` (it ran) or `failed` (it did not: send again).

        Written as a run of kind `resolve` so the journal shows who settled it, when and why; a succeeded
        outcome also stores the resource's applied value, so the next plan does not ask for it again.
        """
        if outcome not in ("succeeded", "failed"):
            raise ValueError(f"outcome must be succeeded or failed, not {outcome!r}")
        run_id = self.start_run("resolve", plan_id=None, fingerprint=None, policy_commit=None, actor=actor)
        self.record(run_id, change, outcome, detail=detail)
        if outcome == "succeeded":
            self.remember(change)
        self.finish_run(run_id, "succeeded", {outcome: 1})
        return run_id

    def last_request(self, resource: str) -> dict[str, Any] | None:
        """The latest action row of `resource` with its recorded request (for rebuilding a change to settle)."""
        row = self.db.execute(
            "SELECT change_key, op, destructive, policy, window, sources, request, response, created_at FROM actions"
            " WHERE resource = ? ORDER BY seq DESC LIMIT 1",
            (resource,),
        ).fetchone()
        if row is None:
            return None
        keys = ("change_key", "op", "destructive", "policy", "window", "sources", "request", "response", "created_at")
        out = dict(zip(keys, row, strict=True))
        for name in ("sources", "request", "response"):
            out[name] = json.loads(out[name]) if out[name] else None
        return out

    def applied_among(self, resource_ids: list[str]) -> set[str]:
        """Which of `resource_ids` this tool set (a create/update that succeeded): what removing a policy removes."""
        found: set[str] = set()
        for i in range(0, len(resource_ids), 500):
            chunk = resource_ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self.db.execute(
                    f"SELECT DISTINCT resource FROM actions WHERE resource IN ({marks})"
                    " AND state = 'succeeded' AND op IN ('create', 'update')",
                    chunk,
                )
            )
        return found

    def destructive_used(
        self, window_start_iso: str, *, policy: str | None = None, school: str | None = None, window: str | None = None
    ) -> int:
        """Destructive actions counted against the window interval starting at `window_start_iso` (a cap's usage).

        The executor stores the interval, window and school the gate counted an action against in its response,
        so the count does not depend on the wall clock the rows were written at (a rehearsal with a fixed
        `now`, a run that straddles midnight, a resumed run). Narrowed to a policy, a school and/or a window.
        """
        query = (
            "SELECT COUNT(DISTINCT change_key) FROM actions WHERE destructive=1"
            " AND state IN ('succeeded','sent','unknown') AND json_extract(response, '$.window_start') = ?"
        )
        args: list[Any] = [window_start_iso]
        if policy is not None:
            query += " AND policy = ?"
            args.append(policy)
        if school is not None:
            query += " AND json_extract(response, '$.school') = ?"
            args.append(school)
        if window is not None:
            query += " AND json_extract(response, '$.window') = ?"
            args.append(window)
        return int(self.db.execute(query, args).fetchone()[0])

    def actions(self, run_id: str | None = None, limit: int = 200) -> list[ActionRow]:
        query = "SELECT run_id, change_key, resource, op, state, policy, detail, updated_at, destructive FROM actions"
        args: tuple[Any, ...] = ()
        if run_id:
            query += " WHERE run_id=?"
            args = (run_id,)
        query += " ORDER BY updated_at DESC LIMIT ?"
        rows = self.db.execute(query, (*args, limit)).fetchall()
        return [ActionRow(*row[:8], destructive=bool(row[8])) for row in rows]

"""The Backend protocol every console adapter implements, and the BackendSpec that registers one.

observe() reads state in bulk; apply() performs changes and reports one ChangeResult per change through
callbacks, so the executor can journal each step as it happens (`on_sent` before a call leaves, then
`on_result`). A backend never imports the engine's executor.

Destructive results (wipe, powerwash, Autopilot reset, retire, deprovision): `unknown` whenever the request
may have reached the service and no definite answer came back (timeout, reset, any 5xx inner or outer, a lost
re-send); `failed` only for an answer proving it did not run (4xx, 404, 429 past the retries). Never re-sent
within a run. Items of a batch keep their own results.

Optional capability, `settle(changes) -> list[ChangeResult]` (GoogleBackend, IntuneBackend; look it up with
`getattr(backend, "settle", None)`): for destructive changes whose earlier outcome is unknown, ask the console
whether they ran. It never sends an action. Per change it returns `succeeded` only when the console proves it
ran (Intune: a wipe/retire pending/active/done in deviceActionResults, or managementState wipePending/
retirePending; Google: commands.get of the recorded command id accepted or executed with SUCCESS, or the device
DEPROVISIONED), `failed` only when the console proves it did not run (Intune: the action failed/notSupported
since the request; Google: the command EXPIRED/CANCELLED/executed without SUCCESS, or the device still active
with no deprovision and no re-enrollment since the request), and omits the change when it cannot tell (changes
of other types too). Inputs it reads from `change.meta`, both optional: `sent_at` (ISO 8601, when the earlier
request left: the journal's `sent` time; without it only evidence that needs no date counts) and `response`
(the journaled response of the earlier result: Google needs its `commandId`, the Directory API cannot list a
device's commands). A result's `response` says what settled it (`settledBy`, the console's state). An AuthError
propagates; other read failures leave the change unsettled.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from orchestrator.core.errors import ConfigError
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId
from orchestrator.core.types import ResourceType, TypeRegistry

SentCallback = Callable[[Change], None]
ResultCallback = Callable[[ChangeResult], None]


@runtime_checkable
class Backend(Protocol):
    name: str

    def observe(self, desired: Sequence[Resource]) -> list[Resource]:
        """Observed resources for every desired key plus, for authoritative types, every managed key in scope.

        A desired key that does not exist in the console is simply absent from the result.
        """

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        """Perform `changes` (batched and paced as the API allows); report every one of them exactly once."""

    # Optional (not part of the runtime-checked protocol): see the module docstring.
    # def settle(self, changes: Sequence[Change]) -> list[ChangeResult]: ...

    def close(self) -> None:
        """Release connections, event loops and temporary files."""


@dataclass(frozen=True)
class CompileInput:
    """What a pure compiler reads: the loaded policies, the inventory, and data a plan read before compiling
    (Intune group → member serials; lost devices due for escalation), so compilers never do I/O."""

    policies: Any  # orchestrator.policy.loader.PolicySet (core imports nothing of ours)
    inventory: Any  # orchestrator.inventory.devices.Inventory
    group_serials: Mapping[str, Collection[str]] = field(default_factory=dict)
    escalations: Mapping[str, Any] = field(default_factory=dict)
    """serial → orchestrator.inventory.escalation.Due: lost devices a LostDevicePolicy escalates now."""


@dataclass(frozen=True)
class OpenContext:
    """What opening a backend needs besides its own config section."""

    section: Any  # the backend's config model instance
    base_dir: Path  # the folder orchestrator.yaml is in (relative paths in the section are relative to it)
    state_dir: Path  # where the backend may keep artifacts (beside the journal)
    counter: Any  # orchestrator.backends.pacing.CallCounter shared by the session


@dataclass(frozen=True)
class ExportInput:
    """What a backend's exporter reads: the settings `observe([])` returned (what a plan with no policy sees), or
    what the spec's `export_read` returned, its config section, the OU/group/site subtree asked for (None:
    everything) and when they were read."""

    observed: Sequence[Resource]
    section: Any
    subtree: str | None
    read_at: str  # ISO 8601 UTC, for the comments of the exported documents


@dataclass(frozen=True)
class BackendSpec:
    """Everything the rest of the system knows about one backend; adding a backend is one spec + one
    registry line.

    name: the config section and `--backend` value. order: its place in plans (lower first).
    types: the resource types it owns (the engine refuses any other). config_model: the pydantic model of its
    `orchestrator.yaml` section. problem(section, base_dir): why a configured section cannot connect (missing
    credentials, a missing inventory), None when it can: checked before anything is opened, never a skip.
    open(ctx): a connected Backend. compile(input): its desired resources, pure. credential_env(section): the
    names of the environment variables holding its secrets (for scheduler environment files; never values).
    target_kinds: the kinds of policy target names it resolves at plan time (e.g. "google_ou").
    """

    name: str
    order: int
    types: tuple[ResourceType, ...]
    config_model: type
    problem: Callable[[Any, Path], str | None]
    open: Callable[[OpenContext], Backend]
    compile: Callable[[CompileInput], list[Resource]]
    credential_env: Callable[[Any], list[str]] = lambda section: []
    target_kinds: tuple[str, ...] = ()
    """Kinds of target names policies use that this backend can look up (`known_targets(kind, names)`)."""
    prunes: Callable[[Any, ResourceId], bool] = lambda section, rid: False
    """Whether the section's `manage:` declares `rid`'s scope pruned (settings no policy wants are deleted)."""
    export: Callable[[ExportInput], list[Any]] | None = None
    """Optional: observed settings → policy files (orchestrator.policy.writer.ExportFile) that plan back to no
    change (`orchestrator export`); None when the backend cannot be exported."""
    export_read: Callable[[Backend], list[Resource]] | None = None
    """Optional: what `export` reads through the open backend (its session, pacers and call counter) instead of
    `observe([])`, for a backend whose observe reads only what policies name (Intune apps, network sites): every
    resource of its types the console has, with `meta` saying what the exporter needs to judge it."""

    def device_types(self) -> set[str]:
        """Lockdown types keyed by one device serial (a console's lock/disable of one device)."""
        return {t.name for t in self.types if t.locks_one_device}


class Catalog:
    """The backends a run knows and their resource types.

    The jobs layer hands it to the engine (plan, apply, compile), so the engine never imports a backend and a
    resource type nobody registered is an error wherever it appears.
    """

    def __init__(self, specs: Iterable[BackendSpec] = ()):
        self.specs: dict[str, BackendSpec] = {}
        self.types = TypeRegistry()
        for spec in specs:
            self.register(spec)

    def register(self, spec: BackendSpec) -> None:
        """Add a backend (the registry's list, or a test's toy backend); its types join the type registry."""
        self.specs[spec.name] = spec
        for rtype in spec.types:
            self.types.add(rtype)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.specs, key=lambda name: self.specs[name].order))

    def spec(self, name: str) -> BackendSpec:
        if name not in self.specs:
            raise ConfigError(f"unknown backend {name!r} (known: {', '.join(self.names())})")
        return self.specs[name]

    def type_of(self, rid: ResourceId) -> ResourceType:
        """The registered type of `rid`; UnknownResourceType when no backend registered it."""
        return self.types.of(rid)

    def backend_order(self, backend: str) -> int:
        return self.specs[backend].order if backend in self.specs else len(self.specs)

    def device_types(self) -> set[tuple[str, str]]:
        """(backend, type) of every lockdown type keyed by one device serial."""
        return {(spec.name, t) for spec in self.specs.values() for t in spec.device_types()}

    def declared_pruning(self, sections: Mapping[str, Any]) -> Callable[[ResourceId], bool]:
        """Where the configured sections (backend name → section) declare pruning, as one predicate."""

        def declared(rid: ResourceId) -> bool:
            section = sections.get(rid.backend)
            return section is not None and rid.backend in self.specs and self.specs[rid.backend].prunes(section, rid)

        return declared

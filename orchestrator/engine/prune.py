"""Which console settings that no policy mentions a plan may delete: declared, never assumed (Argo CD's model).

A district adopting the tool already has URL blocklists, SafeSearch and app installs in its consoles; a plan
that deleted everything no policy mentions would wipe them on the first apply. So an observed setting of an
authoritative type that no policy wants is deleted only when
- this tool applied it (the journal says so): removing a policy removes what the policy made;
- its scope is declared managed in orchestrator.yaml (`google.manage: [{ou: /Students, prune: true}]`,
  `intune.manage: {prune: true}`, `network.manage: {prune: true}`; each backend's spec decides what a scope
  covers); or
- the run asks for it (`plan --prune`).
Anything else is listed in the plan as unmanaged (not in any policy), never changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.core.resources import ResourceId


def _nothing_declared(rid: ResourceId) -> bool:
    return False


@dataclass(frozen=True)
class Pruning:
    everything: bool = False
    """`plan --prune`: delete every setting no policy wants, in this run only."""
    declared: Callable[[ResourceId], bool] = _nothing_declared
    """True where the config declares the setting's scope managed (built from the backends' `manage:`)."""
    applied: frozenset[str] = field(default_factory=frozenset)
    """Resource ids this tool applied (from the journal)."""

    def reason(self, rid: ResourceId) -> str | None:
        """Why a setting no policy wants may be deleted, or None when it is left alone as unmanaged."""
        if self.everything:
            return "pruned: --prune"
        if str(rid) in self.applied:
            return "applied by this tool, and no policy wants it any more"
        if self.declared(rid):
            return "pruned: its scope is declared managed (manage: prune: true)"
        return None


PRUNE_EVERYTHING = Pruning(everything=True)

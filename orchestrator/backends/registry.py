"""The list of backends. Everything that depends on "which backends exist" reads it: the config sections, the
`--backend` choices, the compile dispatch, plan ordering, the resource-type registry, the lockdown's device types.

Adding a backend is one folder (its spec, config section, types, compiler and client) and one line here.
"""

from __future__ import annotations

from orchestrator.backends.google.spec import SPEC as GOOGLE
from orchestrator.backends.intune.spec import SPEC as INTUNE
from orchestrator.backends.network.spec import SPEC as NETWORK
from orchestrator.core.backend import Catalog

CATALOG = Catalog([GOOGLE, INTUNE, NETWORK])

"""A toy backend that lives in the test tree: proof that adding a backend is one folder plus one registration.

It is built exactly like `orchestrator/backends/google/` (config section, types, pure compiler, a Backend,
a spec), but nothing under `orchestrator/` knows it: tests register `SPEC` in a copy of the catalog.
`docs/adding-a-backend.md` walks through these files.
"""

from toy_backend.spec import BLOCKLIST, ERASE, SPEC

__all__ = ["BLOCKLIST", "ERASE", "SPEC"]

"""Desired-state compilers, one per backend: policies + inventory → Resources. Pure: no I/O."""

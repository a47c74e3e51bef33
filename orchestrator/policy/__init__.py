"""The policy language: models (one per kind), grammars for values, and the YAML loader."""

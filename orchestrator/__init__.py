"""K-12 fleet orchestrator: declarative policies reconciled against Google Admin, Intune and network gear."""

__version__ = "0.1.0"

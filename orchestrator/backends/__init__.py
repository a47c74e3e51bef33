"""Backends: Google Admin, Intune (Microsoft Graph) and network gear (Ansible)."""

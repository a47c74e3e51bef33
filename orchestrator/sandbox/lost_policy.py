"""The LostDevicePolicy a generated district runs its lockdown under (benchmarks and the lockdown tests).

One text for every generated district, so a benchmark and a test that say "the lockdown" mean the same policy;
what differs between them (the cap, whose device the lock screen names, the Windows action, network quarantine
and what "found" undoes) is a parameter.
"""

from __future__ import annotations

HEAD = """\
kind: LostDevicePolicy
name: lost-devices
message: "This device belongs to {owner}. Please return it to any school office."
phone: "+1 555 0100 200"
max_per_run: {cap}
google:
  action: disable
intune:
  action: remote_lock
  lost_mode: true
"""
WINDOWS = "  windows: disable_device\n"
NETWORK = """\
network:
  quarantine: {quarantine}
  sites:
    - {site}
"""
ON_FOUND = """\
on_found:
  reenable: true
  disable_lost_mode: true
  release_quarantine: true
"""


def lost_device_policy(
    cap: int,
    *,
    owner: str = "the district",
    disable_windows: bool = True,
    network_site: str | None = None,
    quarantine: bool = False,
    undo_when_found: bool = False,
) -> str:
    """The policy's YAML: lock at most `cap` devices a run; Windows laptops' Entra ID devices disabled when
    `disable_windows`; a `network:` section for `network_site` (quarantining when `quarantine`) when given; an
    `on_found:` that undoes all of it when `undo_when_found`."""
    text = HEAD.format(owner=owner, cap=cap)
    if disable_windows:
        text += WINDOWS
    if network_site is not None:
        text += NETWORK.format(quarantine=str(quarantine).lower(), site=network_site)
    if undo_when_found:
        text += ON_FOUND
    return text

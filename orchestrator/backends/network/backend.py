"""Network backend: per-site Ansible runs (ansible-runner) of playbooks/site.yml against the site's gear.

Sites are groups of the Ansible inventory (`network.inventory`). Resource types, key = site:

- ``network/dns_blocklist``: ``{"blocked": [domains], "safesearch": bool, "youtube": "off|moderate|strict"}``
  (Unbound RPZ or dnsmasq per host var ``resolver_kind``; FortiGate / Meraki vendor plays).
- ``network/mac_quarantine``: sorted lowercase MACs (nftables ``table inet k12_quarantine``; FortiGate).

observe() runs each site once in ``--check --diff``: a type whose play changed nothing on any host is
observed equal to the desired value; otherwise the observed value is
``{"differs": true, "diff": "<unified diff>", "hosts": {host: "changed|ok: ..."}}`` so the plan's "before"
shows what would change. A check that could not say (a failed or unreachable host, a run that failed before
any host reported, a timeout, a type no host ran) is a BackendError naming the site and ansible's own
cause: the state is unknown, so it is never shown as a pending change.

apply() runs one real job per site carrying all of that site's changes; sites run in parallel (at most
``parallel_sites``). Every ChangeResult's response holds ``seconds`` (the site job's wall time), ``site``,
``hosts`` and ``artifacts``. Callbacks are always invoked on the calling thread.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from orchestrator.backends.network.config import NetworkConfig
from orchestrator.backends.network.inventory import read_sites, report_sites, role_hosts
from orchestrator.backends.network.runner import SiteJob, SiteRun, run_site_job
from orchestrator.core.backend import ResultCallback, SentCallback
from orchestrator.core.errors import BackendError
from orchestrator.core.resources import Change, ChangeResult, Resource, ResourceId
from orchestrator.policy.grammar import check_domain, check_mac, check_site

TYPES = ("dns_blocklist", "mac_quarantine")
KEEP_ARTIFACTS = 500  # job folders kept under <artifacts>/network
EMPTY = {"dns_blocklist": {"blocked": [], "safesearch": False, "youtube": "off"}, "mac_quarantine": []}


def validate_value(rtype: str, value: Any) -> Any:
    """Re-check a value against the grammars before it reaches Ansible (saved plans can be edited)."""
    if rtype == "dns_blocklist":
        if not isinstance(value, dict) or set(value) != {"blocked", "safesearch", "youtube"}:
            raise ValueError("dns_blocklist value must have exactly blocked, safesearch and youtube")
        blocked = [check_domain(d) if isinstance(d, str) else _bad(d) for d in value["blocked"]]
        if any(d.startswith("*.") for d in blocked):
            raise ValueError("dns_blocklist domains are normalised (no '*.' prefix)")
        if not isinstance(value["safesearch"], bool) or value["youtube"] not in ("off", "moderate", "strict"):
            raise ValueError("safesearch must be true/false and youtube off, moderate or strict")
        return {"blocked": sorted(set(blocked)), "safesearch": value["safesearch"], "youtube": value["youtube"]}
    if rtype == "mac_quarantine":
        if not isinstance(value, list):
            raise ValueError("mac_quarantine value must be a list of MAC addresses")
        return sorted({check_mac(m) if isinstance(m, str) else _bad(m) for m in value})
    raise ValueError(f"unknown network resource type {rtype!r} (known: {', '.join(TYPES)})")


def check_failure(run: SiteRun, types: Sequence[str]) -> str | None:
    """Why a site's check run says nothing about its state, or None when every wanted type was checked.

    A failed or unreachable host, a run that failed before any host reported (a missing collection, a
    playbook error), a timeout, or a type no host ran is an error for the site: never a pending change.
    """
    if run.status in ("timeout", "canceled", "error"):
        return f"check run {run.status}: {run.error[:800]}"
    problems: list[str] = []
    for rtype in types:
        outcome = run.outcomes.get(rtype)
        if outcome is None or not outcome.hosts:
            if run.status != "successful":
                return f"check run {run.status}: {run.error[:800]}"
            problems.append(f"no host of the site ran the {rtype} play (check the inventory's functional groups)")
            continue
        bad = {h: s for h, s in outcome.host_summary().items() if s.startswith(("failed", "unreachable"))}
        problems += [f"{rtype} on {host}: {summary}" for host, summary in bad.items()]
    if not problems and run.status != "successful":
        problems.append(f"check run {run.status}: {run.error[:800]}")
    if problems:
        artifacts = f" [artifacts: {run.artifacts}]" if run.artifacts else ""
        return "; ".join(dict.fromkeys(problems))[:1500] + artifacts
    return None


def _reports(run: SiteRun, rtype: str, hosts: list[str]) -> dict[str, Any]:
    """{"hosts": host → report, "failure": why the site's state is unknown or None} for one type of a report run."""
    outcome = run.outcomes.get(rtype)
    reports = dict(outcome.reports) if outcome else {}
    failure = None
    if run.status in ("timeout", "canceled", "error"):
        failure = f"report run {run.status}: {run.error[:500]}"
    elif outcome is not None and not outcome.ok:
        bad = {h: s for h, s in outcome.host_summary().items() if s.startswith(("failed", "unreachable"))}
        failure = "; ".join(f"{h}: {s}" for h, s in bad.items())[:800]
    elif any(h not in reports for h in hosts):
        missing = ", ".join(h for h in hosts if h not in reports)
        failure = f"no report from {missing} (report run {run.status}: {run.error[:300]})"
    return {"hosts": {h: reports[h] for h in hosts if h in reports}, "failure": failure}


def _bad(value: Any) -> str:
    raise ValueError(f"expected text, got {type(value).__name__}")


class NetworkBackend:
    name = "network"

    def __init__(
        self, config: NetworkConfig, *, base_dir: Path, artifacts_dir: Path, env: dict[str, str] | None = None
    ):
        self.config = config
        self.base_dir = Path(base_dir).resolve()
        self.inventory = self._path(config.inventory)
        self.playbook_dir = self._path(config.playbooks)
        self.artifacts_dir = Path(artifacts_dir).resolve() / "network"
        self.env = {
            "K12_SANDBOX_NETWORK_DIR": os.environ.get(
                "K12_SANDBOX_NETWORK_DIR", str(self.base_dir / ".orchestrator" / "sandbox-network")
            ),
            **(env or {}),
        }
        self.runs: list[SiteRun] = []  # every job this backend ran, for reports and benchmarks
        self._sites: dict[str, list[str]] | None = None

    def _path(self, text: str) -> Path:
        path = Path(text)
        return (path if path.is_absolute() else self.base_dir / path).resolve()

    @property
    def sites(self) -> dict[str, list[str]]:
        if self._sites is None:
            self._sites = read_sites(self.inventory)
        return self._sites

    def known_targets(self, kind: str, names: Collection[str]) -> Collection[str]:
        """Sites (inventory groups with at least one host), for the plan's target check; reads no gear."""
        return {site for site, hosts in self.sites.items() if hosts} if kind == "network_site" else set()

    def _check_site(self, site: str, where: Iterable[str]) -> None:
        check_site(site)
        if not self.sites.get(site):
            places = ", ".join(where) or "the plan"
            raise BackendError(
                f"network site {site!r} ({places}) is not a group with hosts in {self.inventory} "
                f"(known sites: {', '.join(self.sites) or 'none'})"
            )

    # -- observe -----------------------------------------------------------------------------------------

    def observe(self, desired: Sequence[Resource]) -> list[Resource]:
        by_site: dict[str, dict[str, Resource]] = {}
        for resource in desired:
            if resource.id.backend != self.name:
                continue
            try:
                value = validate_value(resource.id.type, resource.value)
                self._check_site(resource.id.key, resource.sources)
            except ValueError as exc:
                raise BackendError(f"{resource.id} ({', '.join(resource.sources)}): {exc}") from None
            by_site.setdefault(resource.id.key, {})[resource.id.type] = Resource(
                resource.id, value, resource.sources, resource.policy, resource.window, dict(resource.meta)
            )
        jobs = {
            site: self._job(site, {rtype: r.value for rtype, r in wanted.items()}, check=True)
            for site, wanted in by_site.items()
        }
        observed: list[Resource] = []
        failures: list[str] = []
        for site, run in self._run_bounded(jobs, on_start=lambda _site: None):
            failure = check_failure(run, list(by_site[site]))
            if failure is not None:
                sources = sorted({s for r in by_site[site].values() for s in r.sources})
                failures.append(f"site {site!r} ({', '.join(sources) or 'no policy source'}): {failure}")
                continue
            for rtype, resource in by_site[site].items():
                observed.append(
                    Resource(
                        resource.id,
                        self._observed_value(run, rtype, resource.value),
                        meta={"site": site, "check_seconds": round(run.seconds, 2)},
                    )
                )
        if failures:
            raise BackendError(
                f"network: the check run failed for {len(failures)} site(s), so their state is unknown "
                "(no plan was made):\n" + "\n".join(f"  {f}" for f in sorted(failures))
            )
        return sorted(observed, key=lambda r: r.id)

    @staticmethod
    def _observed_value(run: SiteRun, rtype: str, desired: Any) -> Any:
        """Desired when the check changed nothing, else the diff; only called once `check_failure` is None."""
        outcome = run.outcomes[rtype]
        if not outcome.changed:
            return desired
        return {"differs": True, "diff": "".join(outcome.diffs), "hosts": outcome.host_summary()}

    # -- report (export) ---------------------------------------------------------------------------------

    def report(self) -> list[Resource]:
        """The gear's current state per site (`orchestrator export`): one playbooks/report.yml run per site in
        --check mode (what a plan of the exported policies runs: one check per site), read from the events.

        One Resource per site and type the site has gear for, value None; meta: `site`, `hosts` (host → its
        `k12_report`), `unreadable` (gear the report cannot read: FortiGate, Meraki), `failure` (why the state is
        unknown: a failed or unreachable host, a timeout; None when every readable host reported).
        """
        sites = self.sites
        jobs = {site: self._job(site, {}, check=True, playbook="report.yml") for site in report_sites(sites)}
        reported: list[Resource] = []
        for site, run in self._run_bounded(jobs, on_start=lambda _site: None):
            members = set(sites.get(site, []))
            for rtype in TYPES:
                readable = sorted(members & role_hosts(sites, rtype, readable=True))
                unreadable = sorted(members & role_hosts(sites, rtype, readable=False))
                if readable or unreadable:
                    meta = {"site": site, "unreadable": unreadable, **_reports(run, rtype, readable)}
                    reported.append(Resource(ResourceId(self.name, rtype, site), None, meta=meta))
        return sorted(reported, key=lambda r: r.id)

    # -- apply -------------------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], on_sent: SentCallback, on_result: ResultCallback) -> None:
        by_site: dict[str, list[tuple[Change, Any]]] = {}
        for change in changes:
            try:
                if change.id.backend != self.name:
                    raise ValueError(f"not a network change: {change.id}")
                after = EMPTY.get(change.id.type) if change.after is None else change.after
                value = validate_value(change.id.type, after)
                self._check_site(change.id.key, change.sources)
            except (ValueError, BackendError) as exc:
                on_result(
                    ChangeResult(
                        change.key, "failed", f"rejected before sending: {exc}", {"site": change.id.key, "seconds": 0.0}
                    )
                )
                continue
            by_site.setdefault(change.id.key, []).append((change, value))
        jobs = {site: self._job(site, {c.id.type: v for c, v in items}, check=False) for site, items in by_site.items()}

        def started(site: str) -> None:
            for change, _value in by_site[site]:
                on_sent(change)

        for site, run in self._run_bounded(jobs, on_start=started):
            for change, _value in by_site[site]:
                on_result(self._result(change, run))

    def _result(self, change: Change, run: SiteRun) -> ChangeResult:
        outcome = run.outcomes.get(change.id.type)
        response: dict[str, Any] = {
            "site": run.site,
            "seconds": round(run.seconds, 2),
            "status": run.status,
            "rc": run.rc,
            "artifacts": run.artifacts,
        }
        if outcome is not None:
            response["hosts"] = outcome.host_summary()
            response["changed_hosts"] = sorted(h for h, o in outcome.hosts.items() if o.changed)
        if run.status in ("timeout", "canceled"):
            return ChangeResult(
                change.key,
                "unknown",
                f"site job {run.status}: outcome not seen; re-observe before re-sending ({run.error[:300]})",
                response,
            )
        if run.status == "error":
            return ChangeResult(change.key, "failed", f"site job could not start: {run.error[:500]}", response)
        if outcome is None or not outcome.hosts:
            return ChangeResult(
                change.key,
                "failed",
                f"no host in site {run.site!r} ran the {change.id.type} play (check the inventory groups)",
                response,
            )
        if not outcome.ok:
            bad = {h: s for h, s in outcome.host_summary().items() if not s.startswith(("ok", "changed"))}
            return ChangeResult(change.key, "failed", "; ".join(f"{h}: {s}" for h, s in bad.items())[:1000], response)
        changed = ", ".join(response["changed_hosts"]) or "none (already in place)"
        return ChangeResult(change.key, "succeeded", f"{run.site}: changed hosts: {changed}", response)

    # -- jobs --------------------------------------------------------------------------------------------

    def _job(self, site: str, values: dict[str, Any], *, check: bool, playbook: str = "site.yml") -> SiteJob:
        return SiteJob(
            site=site,
            values={f"k12_{rtype}": value for rtype, value in values.items()},
            check=check,
            playbook=playbook,
            playbook_dir=self.playbook_dir,
            inventory=self.inventory,
            artifacts_dir=self.artifacts_dir,
            timeout=self.config.timeout_seconds,
            env=self.env,
        )

    def _run_bounded(self, jobs: dict[str, SiteJob], on_start: Callable[[str], None]) -> Iterable[tuple[str, SiteRun]]:
        """Run jobs with at most `parallel_sites` at once; yield (site, run) on the calling thread."""
        if not jobs:
            return
        pending = list(jobs.items())
        running: dict[Future[SiteRun], str] = {}
        with ThreadPoolExecutor(max_workers=self.config.parallel_sites, thread_name_prefix="k12-site") as pool:
            while pending or running:
                while pending and len(running) < self.config.parallel_sites:
                    site, job = pending.pop(0)
                    on_start(site)
                    running[pool.submit(run_site_job, job)] = site
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    site = running.pop(future)
                    try:
                        run = future.result()
                    except Exception as exc:  # a bug in our own job code: report it against the site
                        run = SiteRun(site, jobs[site].check, "error", None, 0.0, error=repr(exc))
                    self.runs.append(run)
                    yield site, run

    def prune_artifacts(self, keep: int = KEEP_ARTIFACTS) -> None:
        """Delete all but the newest `keep` job folders (their names start with a UTC timestamp)."""
        if not self.artifacts_dir.is_dir():
            return
        jobs = sorted(p for p in self.artifacts_dir.iterdir() if p.is_dir())
        for old in jobs[: max(0, len(jobs) - keep)]:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        """Nothing stays open between jobs; old artifacts are pruned."""
        self.prune_artifacts()

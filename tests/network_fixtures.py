"""Real network services for the network backend's tests: resolvers on loopback and a namespaced router.

Everything binds 127.0.0.x on a free port, or lives inside network namespaces created here (10.199.x.x only
there). Every process is stopped by PID and every namespace deleted on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
IP = shutil.which("ip") or "/usr/sbin/ip"

# Answer data held by the upstream resolver (never by the filtering one).
UPSTREAM_HOSTS = {
    "tiktok.com": "192.0.2.10",
    "www.tiktok.com": "192.0.2.11",
    "roblox.com": "192.0.2.12",
    "games.roblox.com": "192.0.2.13",
    "example.org": "192.0.2.20",
    "khanacademy.org": "192.0.2.21",
    "www.google.com": "192.0.2.30",
    "forcesafesearch.google.com": "192.0.2.31",
    "www.youtube.com": "192.0.2.40",
    "restrict.youtube.com": "192.0.2.41",
}


def free_port(address: str) -> int:
    """A port free for both UDP and TCP on `address`."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {address}")


def wait_for_dns(address: str, port: int, name: str = "example.org", attempts: int = 100) -> None:
    """Poll until the resolver answers (any rcode); raise with a clear message if it never does."""
    import dns.exception
    import dns.message
    import dns.query

    for _ in range(attempts):
        try:
            dns.query.udp(dns.message.make_query(name, "A"), address, port=port, timeout=0.2)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"resolver on {address}:{port} did not answer")


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Resolver:
    kind: str
    address: str
    port: int
    host_vars: dict


def dnsmasq_argv(address: str, port: int) -> list[str]:
    """A foreground dnsmasq on one loopback address and port, with no system config, hosts or cache."""
    return [
        DNSMASQ,
        "-k",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={address}",
        f"--port={port}",
        "--user=root",
        "--cache-size=0",
    ]


@contextlib.contextmanager
def upstream_resolver(tmp: Path, address: str = "127.0.0.3") -> Iterator[tuple[str, int]]:
    """dnsmasq answering UPSTREAM_HOSTS and nothing else."""
    port = free_port(address)
    hosts = tmp / "upstream.hosts"
    hosts.write_text("".join(f"{ip} {name}\n" for name, ip in UPSTREAM_HOSTS.items()))
    argv = [*dnsmasq_argv(address, port), f"--addn-hosts={hosts}", "--pid-file="]
    with process(argv, tmp / "upstream.log"):
        wait_for_dns(address, port)
        yield address, port


@contextlib.contextmanager
def unbound_resolver(tmp: Path, upstream: tuple[str, int], address: str = "127.0.0.2") -> Iterator[Resolver]:
    """Unbound with an RPZ zone file (initially empty) forwarding everything else upstream."""
    port = free_port(address)
    folder = tmp / "unbound"
    folder.mkdir()
    rpz = folder / "k12-blocklist.rpz"
    rpz.write_text("$TTL 60\n@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 60\n@ IN NS localhost.\n")
    conf = folder / "unbound.conf"
    conf.write_text(
        textwrap.dedent(f"""\
        server:
            interface: {address}@{port}
            port: {port}
            do-daemonize: no
            username: ""
            chroot: ""
            directory: "{folder}"
            pidfile: ""
            use-syslog: no
            logfile: ""
            verbosity: 1
            do-ip6: no
            do-not-query-localhost: no
            access-control: 127.0.0.0/8 allow
            module-config: "respip iterator"
            qname-minimisation: no
            cache-max-ttl: 0
            cache-max-negative-ttl: 0
        rpz:
            name: rpz.k12
            zonefile: "{rpz}"
        forward-zone:
            name: "."
            forward-addr: {upstream[0]}@{upstream[1]}
        remote-control:
            control-enable: yes
            control-interface: "{folder / "control.sock"}"
            control-use-cert: no
        """)
    )
    with process([UNBOUND, "-d", "-c", str(conf)], folder / "unbound.log"):
        wait_for_dns(address, port)
        yield Resolver(
            "unbound",
            address,
            port,
            {
                "resolver_kind": "unbound",
                "unbound_rpz_file": str(rpz),
                "unbound_control_conf": str(conf),
                "unbound_rpz_zone": "rpz.k12",
            },
        )


@contextlib.contextmanager
def dnsmasq_resolver(tmp: Path, upstream: tuple[str, int], address: str = "127.0.0.4") -> Iterator[Resolver]:
    """dnsmasq reading its upstreams and blocks from a servers-file that the playbook writes."""
    port = free_port(address)
    folder = tmp / "dnsmasq"
    folder.mkdir()
    servers = folder / "k12-servers.conf"
    servers.write_text(f"server={upstream[0]}#{upstream[1]}\n")
    pid = folder / "dnsmasq.pid"
    argv = [
        *dnsmasq_argv(address, port),
        f"--servers-file={servers}",
        f"--pid-file={pid}",
    ]
    with process(argv, folder / "dnsmasq.log"):
        wait_for_dns(address, port)
        yield Resolver(
            "dnsmasq",
            address,
            port,
            {
                "resolver_kind": "dnsmasq",
                "dnsmasq_servers_file": str(servers),
                "dnsmasq_pid_file": str(pid),
                "dnsmasq_upstreams": [f"{upstream[0]}#{upstream[1]}"],
            },
        )


def resolve(resolver: Resolver, name: str, rdtype: str = "A") -> tuple[str, list[str]]:
    """(rcode text, answer records as text) from a direct query to `resolver`."""
    import dns.message
    import dns.query
    import dns.rcode

    reply = dns.query.udp(dns.message.make_query(name, rdtype), resolver.address, port=resolver.port, timeout=3)
    answers = [item.to_text() for rrset in reply.answer for item in rrset]
    return dns.rcode.to_text(reply.rcode()), answers


def write_inventory(path: Path, groups: dict[str, dict[str, dict]], roles: dict[str, list[str]]) -> Path:
    """YAML inventory: `groups` = site → host → vars; `roles` = functional group → hosts."""
    children: dict = {site: {"hosts": hosts} for site, hosts in groups.items()}
    for role, hosts in roles.items():
        children[role] = {"hosts": {h: None for h in hosts}}
    path.write_text(yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
    return path


def local_host_vars(**extra: object) -> dict:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "k12_sandbox": False, **extra}


# -- network namespaces -------------------------------------------------------------------------------


def namespaces_unavailable() -> str | None:
    """Why namespaces can't be used here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_SYS_ADMIN/CAP_NET_ADMIN); run the services tests as root"
    for tool in (IP, SSHD, shutil.which("nft"), shutil.which("ping"), shutil.which("ssh-keygen")):
        if not tool or not Path(tool).exists():
            return f"missing tool for the namespace test: {tool}"
    probe = f"k12probe{uuid.uuid4().hex[:6]}"
    made = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create network namespaces here: {made.stderr.strip()}"
    subprocess.run([IP, "netns", "del", probe], capture_output=True)
    return None


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class NamespacedRouter:
    router_ns: str
    client_ns: str
    router_ip: str
    client_mac: str
    host_vars: dict

    def client_can_ping_router(self) -> bool:
        probe = subprocess.run(
            [IP, "netns", "exec", self.client_ns, "ping", "-c", "1", "-W", "1", self.router_ip], capture_output=True
        )
        return probe.returncode == 0

    def flush_quarantine(self) -> None:
        _run(IP, "netns", "exec", self.router_ns, "nft", "delete", "table", "inet", "k12_quarantine")

    def nft_ruleset(self) -> str:
        return subprocess.run(
            [IP, "netns", "exec", self.router_ns, "nft", "list", "ruleset"], capture_output=True, text=True
        ).stdout


@contextlib.contextmanager
def namespaced_router(tmp: Path) -> Iterator[NamespacedRouter]:
    """A router namespace reached only through `sshd -i` (ProxyCommand) and a client namespace on a veth."""
    tag = uuid.uuid4().hex[:6]
    rtr, cli = f"k12rtr{tag}", f"k12cli{tag}"
    veth_r, veth_c = f"k12r{tag}", f"k12c{tag}"
    mac = "02:00:00:" + ":".join(tag[i : i + 2] for i in (0, 2, 4))
    folder = tmp / "router"
    folder.mkdir()
    made_run_sshd = not Path("/run/sshd").exists()
    try:
        _run(IP, "netns", "add", rtr)
        _run(IP, "netns", "add", cli)
        _run(IP, "link", "add", veth_r, "type", "veth", "peer", "name", veth_c)
        _run(IP, "link", "set", veth_r, "netns", rtr)
        _run(IP, "link", "set", veth_c, "netns", cli)
        _run(IP, "-n", rtr, "addr", "add", "10.199.0.1/24", "dev", veth_r)
        _run(IP, "-n", rtr, "link", "set", veth_r, "up")
        _run(IP, "-n", rtr, "link", "set", "lo", "up")
        _run(IP, "-n", cli, "link", "set", veth_c, "address", mac)
        _run(IP, "-n", cli, "addr", "add", "10.199.0.2/24", "dev", veth_c)
        _run(IP, "-n", cli, "link", "set", veth_c, "up")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key"))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "client_key"))
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        config = folder / "sshd_config"
        config.write_text(
            textwrap.dedent(f"""\
            HostKey {folder / "host_key"}
            AuthorizedKeysFile {folder / "authorized_keys"}
            UsePAM no
            StrictModes no
            PidFile none
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            LogLevel ERROR
            """)
        )
        if made_run_sshd:
            Path("/run/sshd").mkdir(mode=0o755)
        proxy = f"{IP} netns exec {rtr} {SSHD} -i -f {config}"
        yield NamespacedRouter(
            rtr,
            cli,
            "10.199.0.1",
            mac,
            {
                "ansible_connection": "ssh",
                "ansible_host": "10.199.0.1",
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(folder / "client_key"),
                "ansible_ssh_common_args": f"-o ProxyCommand='{proxy}' -o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                # a private ControlPath: a master persisted by another test must never be reused for this one
                "ansible_ssh_args": "-o ControlMaster=auto -o ControlPersist=30s",
                "ansible_control_path_dir": str(folder / "cp"),
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_pipelining": True,
                "k12_nft_file": str(folder / "k12_quarantine.nft"),
                "k12_sandbox": False,
            },
        )
    finally:
        for ns in (rtr, cli):
            pids = subprocess.run([IP, "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:  # only processes inside the namespaces this fixture created (sshd -i)
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            subprocess.run([IP, "netns", "del", ns], capture_output=True)
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)

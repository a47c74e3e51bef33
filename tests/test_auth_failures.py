"""Credential failures end in one AuthError line, through the real client libraries (issue 18, item 5).

Local token endpoints stand in for Entra ID and Google OAuth: a tiny HTTPS server (a certificate generated
here, trusted through `intune.authority_ca_file`) answering 400 `invalid_client` to azure-identity, a plain
HTTP server answering 400 `invalid_grant` to google-auth (a service-account key generated here whose
`token_uri` points at it), and closed ports for unreachable endpoints. The emulators answer 401/403.
Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.backends.google.backend import GoogleBackend
from orchestrator.backends.google.config import GoogleConfig
from orchestrator.backends.intune.backend import IntuneBackend
from orchestrator.backends.intune.config import IntuneConfig
from orchestrator.backends.pacing import RetryPolicy
from orchestrator.core.errors import AuthError
from orchestrator.sandbox.google_emulator import start_emulator
from orchestrator.sandbox.graph_emulator import GraphEmulator
from orchestrator.sandbox.httpbase import Fault

SECRET = "s3cr3t-client-value-never-shown"
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"


class TokenEndpoint(BaseHTTPRequestHandler):
    """Answers every POST with the configured status and OAuth error body; counts requests."""

    status = 400
    body: dict = {}
    seen: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(self.path)
        payload = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        return


def serve(handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "authority.pem", tmp_path / "authority.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def aad(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS Entra ID token endpoint answering 400 invalid_client (as for a wrong or expired secret)."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    handler = type("AadToken", (TokenEndpoint,), {"seen": []})
    handler.body = {
        "error": "invalid_client",
        "error_description": f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
        f"the request is the client secret value, not the client secret ID, for a secret added to app '{CLIENT}'.",
        "error_codes": [7000215],
    }
    server = serve(handler, context)
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


@pytest.fixture
def graph() -> Iterator[GraphEmulator]:
    server = GraphEmulator.start_local()
    yield server
    server.stop()


def intune(config: IntuneConfig) -> IntuneBackend:
    return IntuneBackend(config, sleep=lambda s: None, policy=RetryPolicy(attempts=2), timeout=5.0)


def assert_one_clean_line(message: str, *needles: str) -> None:
    assert "\n" not in message
    assert SECRET not in message and "PRIVATE KEY" not in message and "@district.example" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


# ---------------------------------------------------------------------------------------------- Intune


def test_intune_refused_client_secret_is_one_auth_line(aad, graph, monkeypatch) -> None:
    authority, ca = aad
    monkeypatch.setenv("K12_TEST_AZURE_SECRET", SECRET)
    config = IntuneConfig(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret_env="K12_TEST_AZURE_SECRET",
        graph_endpoint=graph.url,
        authority_host=authority,
        authority_ca_file=str(ca),
    )
    backend = intune(config)
    try:
        with pytest.raises(AuthError) as raised:
            backend.observe([])
    finally:
        backend.close()
    assert_one_clean_line(str(raised.value), "intune:", "invalid_client", "AADSTS7000215", "$K12_TEST_AZURE_SECRET")
    assert sum(graph.calls.values()) == 0, "no Graph request left without a token"


def test_intune_unreachable_token_endpoint_is_one_auth_line(graph, monkeypatch) -> None:
    monkeypatch.setenv("K12_TEST_AZURE_SECRET", SECRET)
    authority = f"https://127.0.0.1:{closed_port()}"
    backend = intune(
        IntuneConfig(
            tenant_id=TENANT,
            client_id=CLIENT,
            client_secret_env="K12_TEST_AZURE_SECRET",
            graph_endpoint=graph.url,
            authority_host=authority,
        )
    )
    try:
        with pytest.raises(AuthError) as raised:
            backend.observe([])
    finally:
        backend.close()
    assert_one_clean_line(str(raised.value), "intune:", "cannot reach the token endpoint", authority)


@pytest.mark.parametrize(
    ("status", "needles"),
    [
        (401, ("HTTP 401", "intune.tenant_id")),
        (403, ("HTTP 403", "DeviceManagementConfiguration.ReadWrite.All", "README")),
    ],
)
def test_intune_graph_401_or_403_is_one_auth_line(graph, status: int, needles: tuple[str, ...]) -> None:
    graph.faults.queue.append(Fault(status, endpoint="GET deviceConfigurations"))
    backend = intune(IntuneConfig(graph_endpoint=graph.url))
    try:
        with pytest.raises(AuthError) as raised:
            backend.observe([])
    finally:
        backend.close()
    assert_one_clean_line(str(raised.value), "intune:", *needles)
    assert graph.calls["GET deviceConfigurations"] == 1, "an authorisation failure is not retried"


def test_intune_graph_429_is_not_an_auth_error(graph) -> None:
    graph.faults.queue.append(Fault(429, retry_after=0, endpoint="GET deviceConfigurations"))
    backend = intune(IntuneConfig(graph_endpoint=graph.url))
    try:
        assert backend.observe([]) == []
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------- Google


def service_account_file(tmp_path: Path, token_uri: str) -> Path:
    """A service-account key generated here (never a real one) whose token_uri points at `token_uri`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "sa@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


@pytest.fixture
def google_token() -> Iterator[tuple[str, type[TokenEndpoint]]]:
    """A Google OAuth token endpoint answering 400 invalid_grant (delegation not authorised, bad key)."""
    handler = type("GoogleToken", (TokenEndpoint,), {"seen": []})
    handler.body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    server = serve(handler)
    yield f"http://127.0.0.1:{server.server_address[1]}/token", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def directory():
    server = start_emulator(50, seed=2026)
    yield server
    server.stop()


def google(directory, monkeypatch, key_file: Path | None) -> GoogleBackend:
    env = "K12_TEST_SA_FILE"
    if key_file is not None:
        monkeypatch.setenv(env, str(key_file))
    else:
        monkeypatch.delenv(env, raising=False)
    config = GoogleConfig(
        directory_endpoint=directory.url,
        policy_endpoint=directory.url,
        credentials_file_env=env,
        admin_subject="it-admin@district.example",
    )
    return GoogleBackend(config, sleep=lambda s: None, retry=RetryPolicy(attempts=2), timeout=5.0, poll_interval=0.0)


def test_google_invalid_grant_is_one_auth_line(google_token, directory, monkeypatch, tmp_path) -> None:
    uri, handler = google_token
    backend = google(directory, monkeypatch, service_account_file(tmp_path, uri))
    with pytest.raises(AuthError) as raised:
        backend.observe([])
    assert_one_clean_line(str(raised.value), "google:", "invalid_grant", "$K12_TEST_SA_FILE", "scopes", "README")
    assert handler.seen == ["/token"], "asked once: a refused grant is not retried"
    assert sum(directory.calls.values()) == 0


def test_google_unreachable_token_endpoint_is_one_auth_line(directory, monkeypatch, tmp_path) -> None:
    uri = f"http://127.0.0.1:{closed_port()}/token"
    backend = google(directory, monkeypatch, service_account_file(tmp_path, uri))
    with pytest.raises(AuthError) as raised:
        backend.observe([])
    assert_one_clean_line(str(raised.value), "google:", "cannot reach the token endpoint", "$K12_TEST_SA_FILE")


def test_google_token_failure_before_a_wipe_is_failed_not_unknown(google_token, directory, monkeypatch, tmp_path):
    """The token is obtained before the command leaves: a refused grant proves the wipe was never sent."""
    from orchestrator.core.resources import Change, ResourceId

    uri, _ = google_token
    backend = google(directory, monkeypatch, service_account_file(tmp_path, uri))
    backend.devices._devices = {"CB0000004": [{"deviceId": "d4", "serialNumber": "CB0000004", "status": "ACTIVE"}]}
    change = Change(
        ResourceId("google", "reimage", "CB0000004|r"), "action", None, {"command": "WIPE_USERS"}, destructive=True
    )
    results = []
    backend.apply([change], lambda c: None, results.append)
    assert [r.state for r in results] == ["failed"]
    assert "invalid_grant" in results[0].detail
    assert directory.calls["chromeosdevices.issueCommand"] == 0


@pytest.mark.parametrize(
    ("status", "reason", "needle"), [(401, "authError", "HTTP 401"), (403, "forbidden", "HTTP 403")]
)
def test_google_401_or_403_not_a_rate_limit_is_one_auth_line(directory, monkeypatch, status, reason, needle) -> None:
    directory.faults.queue.append(Fault(status, reason, endpoint="orgunits.list"))
    backend = google(directory, monkeypatch, None)
    with pytest.raises(AuthError) as raised:
        backend.org_units()
    assert_one_clean_line(str(raised.value), "google:", needle, "domain-wide delegation", "README")
    assert directory.calls["orgunits.list"] == 1


# ---------------------------------------------------------------------------------------------- CLI


def run_cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def assert_cli_one_line(run: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert_one_clean_line(" ".join(lines[0].split()), *needles)


def test_cli_google_invalid_grant_exits_1_with_one_line(google_token, directory, tmp_path) -> None:
    uri, _ = google_token
    key = service_account_file(tmp_path, uri)
    config = tmp_path / "orchestrator.yaml"
    config.write_text(
        f"journal: {tmp_path / 'journal.db'}\npolicies: {tmp_path / 'policies'}\n"
        f"google:\n  admin_subject: it-admin@district.example\n  credentials_file_env: K12_TEST_SA_FILE\n"
        f"  directory_endpoint: {directory.url}\n  policy_endpoint: {directory.url}\n"
    )
    (tmp_path / "policies").mkdir()
    run = run_cli(config, {"K12_TEST_SA_FILE": str(key)}, "drift", "--backend", "google")
    assert_cli_one_line(run, "google:", "invalid_grant")


def test_cli_intune_refused_secret_exits_1_with_one_line(aad, graph, tmp_path) -> None:
    authority, ca = aad
    config = tmp_path / "orchestrator.yaml"
    config.write_text(
        f"journal: {tmp_path / 'journal.db'}\npolicies: {tmp_path / 'policies'}\n"
        f"intune:\n  tenant_id: {TENANT}\n  client_id: {CLIENT}\n  client_secret_env: K12_TEST_AZURE_SECRET\n"
        f"  graph_endpoint: {graph.url}\n  authority_host: {authority}\n  authority_ca_file: {ca}\n"
    )
    (tmp_path / "policies").mkdir()
    run = run_cli(config, {"K12_TEST_AZURE_SECRET": SECRET}, "drift", "--backend", "intune")
    assert_cli_one_line(run, "intune:", "invalid_client")

"""A TLS front for a Temporal frontend: a CA, server and client certificates, and Debian's nginx.

The front serves four doors to one Temporal server, each on its own port:
server TLS only; mutual TLS (a client certificate signed by the CA is required);
an API key (`authorization: Bearer <key>`), where the operator service is refused as
Temporal Cloud refuses it to a namespace's API key; and server TLS on connections
retired after a few requests, as a load balancer or Temporal's own frontend
(every 5 minutes) retires them.
"""

from __future__ import annotations

import datetime
import getpass
import ipaddress
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack.processes import free_port, port_in_use

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVER_NAME = "temporal.plant.test"
START_SECONDS = 10.0
# Requests a connection of the retiring door carries before nginx closes it with a GOAWAY.
RETIRING_AFTER_REQUESTS = 3


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA, the front's certificate and key, a client's certificate and key."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(folder: Path) -> Certificates:
    """A fresh CA, a server certificate for SERVER_NAME, localhost and 127.0.0.1, a client's."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Work sessions test CA"))
        .issuer_name(_name("Work sessions test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        common_name: str, usage: x509.ObjectIdentifier, names: list[x509.GeneralName]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    server_cert, server_key = leaf(
        SERVER_NAME,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName(SERVER_NAME),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    client_cert, client_key = leaf("work-sessions-worker", ExtendedKeyUsageOID.CLIENT_AUTH, [])
    folder.mkdir(parents=True, exist_ok=True)
    certificates = Certificates(
        ca=folder / "ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
    )
    certificates.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certificates.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, certificates.server_key)
    certificates.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(client_key, certificates.client_key)
    return certificates


# A refusal must be a gRPC answer (grpc-status in the headers of an empty answer), or
# the SDK reads nginx's HTML error page as a gRPC frame ("invalid compression flag").
def _refusal(location: str, grpc_status: int, message: str) -> str:
    return f"""
        location {location} {{
            default_type application/grpc;
            add_header grpc-status {grpc_status} always;
            add_header grpc-message "{message}" always;
            return 204;
        }}"""


def nginx_config(
    folder: Path, upstream: str, certificates: Certificates, ports: dict[str, int], api_key: str
) -> str:
    """nginx 1.22's configuration of the four doors (DESIGN section 7 says why each line)."""
    tls = f"""
        ssl_certificate {certificates.server_cert};
        ssl_certificate_key {certificates.server_key};
        ssl_protocols TLSv1.2 TLSv1.3;"""
    proxy = """
        location / {
            grpc_pass grpc://temporal;
        }"""
    # Workers as the test's own user: as root, nginx would run them as `nobody`, who
    # could not reach the temp dirs inside the test's private folder.
    return f"""
user {getpass.getuser()};
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/tmp/body;
    proxy_temp_path {folder}/tmp/proxy;
    fastcgi_temp_path {folder}/tmp/fastcgi;
    uwsgi_temp_path {folder}/tmp/uwsgi;
    scgi_temp_path {folder}/tmp/scgi;
    client_max_body_size 0;
    grpc_read_timeout 300s;
    grpc_send_timeout 300s;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    http2_max_concurrent_streams 1024;
    map_hash_bucket_size 128;
    map $http_authorization $api_key_refused {{
        "Bearer {api_key}" 0;
        default 1;
    }}
    upstream temporal {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{ports["tls"]} ssl http2;{tls}{proxy}
    }}
    server {{
        listen 127.0.0.1:{ports["mtls"]} ssl http2;{tls}
        ssl_client_certificate {certificates.ca};
        ssl_verify_client on;
        error_page 495 496 = @unauthenticated;{proxy}{
        _refusal("@unauthenticated", 16, "a client certificate signed by the plant CA is required")
    }
    }}
    server {{
        listen 127.0.0.1:{ports["api_key"]} ssl http2;{tls}
        error_page 401 = @unauthenticated;
        error_page 403 = @permission_denied;
        location / {{
            if ($api_key_refused) {{ return 401; }}
            grpc_pass grpc://temporal;
        }}
        location /temporal.api.operatorservice.v1.OperatorService/ {{
            if ($api_key_refused) {{ return 401; }}
            return 403;
        }}{_refusal("@unauthenticated", 16, "a valid API key is required")}{
        _refusal("@permission_denied", 7, "the operator service is refused to a namespace API key")
    }
    }}
    server {{
        listen 127.0.0.1:{ports["retiring"]} ssl http2;{tls}
        keepalive_requests {RETIRING_AFTER_REQUESTS};{proxy}
    }}
}}
"""


@dataclass
class TlsFront:
    """A running nginx in front of a Temporal frontend."""

    folder: Path
    certificates: Certificates
    ports: dict[str, int]
    api_key: str
    process: subprocess.Popen[bytes] | None = None

    def address(self, door: str) -> str:
        return f"localhost:{self.ports[door]}"

    def start(self, upstream: str) -> TlsFront:
        """Writes the configuration and starts nginx in the foreground; waits for its ports."""
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        config = self.folder / "nginx.conf"
        config.write_text(
            nginx_config(self.folder, upstream, self.certificates, self.ports, self.api_key)
        )
        with (self.folder / "stderr.log").open("ab") as stderr:
            self.process = subprocess.Popen(
                [NGINX, "-c", str(config), "-p", str(self.folder), "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + START_SECONDS
        while not all(port_in_use(port) for port in self.ports.values()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "nginx did not start: " + (self.folder / "stderr.log").read_text()
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_front(folder: Path, upstream: str, api_key: str) -> TlsFront:
    """Makes certificates in `folder` and starts nginx there, in front of `upstream`."""
    certificates = make_certificates(folder / "pki")
    ports = {door: free_port() for door in ("tls", "mtls", "api_key", "retiring")}
    return TlsFront(folder, certificates, ports, api_key).start(upstream)

"""Local servers the alert tests deliver to: a small SMTP server (with AUTH and optional STARTTLS) and an HTTP
server that records webhook posts. Both listen on 127.0.0.1 on a port chosen when created, and can be started
after a first delivery attempt failed (the port is known before the server is up)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files (the test trusts it through SSL_CERT_FILE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str | None
    tls: bool


@dataclass
class SmtpServer:
    """Speaks enough SMTP for smtplib: EHLO/HELO, STARTTLS (with a certificate), AUTH PLAIN/LOGIN, MAIL, RCPT, DATA."""

    username: str | None = None
    password: str | None = None
    certificate: tuple[Path, Path] | None = None
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)

    def start(self) -> SmtpServer:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.tls, self.user = False, None

            def say(self, line: str) -> None:
                self.wfile.write(f"{line}\r\n".encode())
                self.wfile.flush()

            def ask(self) -> str | None:
                data = self.rfile.readline()
                return data.decode(errors="replace").rstrip("\r\n") if data else None  # None: the client left

            def handle(self) -> None:
                self.say("220 127.0.0.1 test SMTP server ready")
                sender, recipients = None, []
                while True:
                    line = self.ask()
                    if line is None:
                        return
                    verb, _, argument = line.partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        extensions = ["AUTH PLAIN LOGIN"] if owner.username else []
                        if owner.certificate and not self.tls:
                            extensions.append("STARTTLS")
                        self.say("250-127.0.0.1 greets you")  # the first line names the server, not a feature
                        for extension in extensions:
                            self.say(f"250-{extension}")
                        self.say("250 SIZE 10240000")
                    elif verb == "HELO":
                        self.say("250 127.0.0.1")
                    elif verb == "STARTTLS" and owner.certificate and not self.tls:
                        self.say("220 Go ahead")
                        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                        context.load_cert_chain(*map(str, owner.certificate))
                        self.connection = context.wrap_socket(self.connection, server_side=True)
                        self.rfile = self.connection.makefile("rb")
                        self.wfile = self.connection.makefile("wb")
                        self.tls = True
                    elif verb == "AUTH":
                        mechanism, _, initial = argument.partition(" ")
                        if mechanism.upper() == "PLAIN":
                            if not initial:
                                self.say("334 ")
                                initial = self.ask()
                            _, user, secret = base64.b64decode(initial).decode().split("\0")
                        else:
                            self.say("334 VXNlcm5hbWU6")
                            user = base64.b64decode(self.ask()).decode()
                            self.say("334 UGFzc3dvcmQ6")
                            secret = base64.b64decode(self.ask()).decode()
                        if (user, secret) == (owner.username, owner.password):
                            self.user = user
                            self.say("235 2.7.0 Authentication successful")
                        else:
                            self.say("535 5.7.8 Authentication credentials invalid")
                    elif verb == "MAIL":
                        if owner.username and self.user is None:
                            self.say("530 5.7.0 Authentication required")
                            continue
                        sender, recipients = argument.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                        self.say("250 OK")
                    elif verb == "RCPT":
                        recipients.append(argument.split(":", 1)[1].strip().strip("<>"))
                        self.say("250 OK")
                    elif verb == "DATA":
                        self.say("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            lines.append(data[1:] if data.startswith(b"..") else data)
                        owner.received.append(Received(sender, recipients, message_from_bytes(
                            b"".join(lines), policy=policy.default), self.user, self.tls))
                        self.say("250 OK: queued")
                    elif verb in ("RSET", "NOOP"):
                        self.say("250 OK")
                    elif verb == "QUIT":
                        self.say("221 Bye")
                        return
                    else:
                        self.say("502 Command not implemented")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if getattr(self, "_server", None) is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass
class WebhookServer:
    """Records JSON posts; answers ``status`` (200 unless a test changes it)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    posts: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/steward"

    def start(self) -> WebhookServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.posts.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                    "json": json.loads(body)})
                self.send_response(owner.status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if getattr(self, "_server", None) is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

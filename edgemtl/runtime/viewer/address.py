"""Where the viewer listens, checked and bound before the pipeline starts: a port in use, a malformed URI
or a bind off the loopback without a token is a one-line OutputError naming the URI and the fix."""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from edgemtl.errors import OutputError

LOCAL_NAMES = ("localhost",)


@dataclass(frozen=True)
class ViewerAddress:
    uri: str
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        """Only this machine can connect: 127.0.0.0/8, ::1 or localhost (0.0.0.0 is every interface)."""
        if self.host in LOCAL_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: loopback only if every address it resolves to is
            try:
                found = {info[4][0] for info in socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)}
            except OSError:
                return False
            return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in found)


def parse_address(uri: str) -> ViewerAddress:
    """`http://HOST:PORT` (a path or query is refused: the viewer owns the whole server)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        port, parts = None, None
    if parts is None or parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise OutputError(
            f"output {uri!r} is not a viewer address: expected http://HOST:PORT, e.g. http://127.0.0.1:8080"
        )
    if parts.query or parts.username:
        raise OutputError(f"output {uri!r}: a viewer address is http://HOST:PORT only; give the secret with --token")
    if port == 0:
        raise OutputError(f"output {uri!r} has port 0: choose a port, e.g. http://127.0.0.1:8080")
    return ViewerAddress(uri, parts.hostname, port)


def check_access(address: ViewerAddress, token: str | None) -> None:
    """Off the loopback, anyone on the network could watch: a token is required there."""
    if not address.loopback and not token:
        raise OutputError(
            f"output {address.uri} listens beyond this machine ({address.host}) without a token: "
            "give --token SECRET (viewers then open /?token=SECRET), or bind 127.0.0.1"
        )


def bind(address: ViewerAddress) -> socket.socket:
    """A listening socket, bound here (the main thread) so that a port in use fails before any work."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(address.host, address.port, family=family, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OutputError(f"output {address.uri}: host {address.host!r} does not resolve ({exc.strerror})") from None
    family, kind, proto, _, where = infos[0]
    server = socket.socket(family, kind, proto)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses a port in TIME_WAIT
    try:
        server.bind(where)
        server.listen(128)
    except OSError as exc:
        server.close()
        if exc.errno == errno.EADDRINUSE:
            raise OutputError(
                f"output {address.uri}: port {address.port} is in use: choose another port, or stop what listens there"
            ) from None
        if exc.errno == errno.EACCES:
            raise OutputError(
                f"output {address.uri}: port {address.port} needs privileges here: choose a port above 1023"
            ) from None
        raise OutputError(f"output {address.uri}: cannot listen on {address.host} ({exc.strerror})") from None
    server.setblocking(False)
    return server

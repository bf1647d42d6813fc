"""Can the web server have its address? Checked before the daemon starts anything, so a
busy port is one clear error instead of a web server restarting forever."""
from __future__ import annotations

import errno
import os
import socket


class BindError(Exception):
    """The address in ``server.bind`` (or ``HOPPER_BIND``) cannot be listened on."""


def bind_source() -> str:
    """Which setting the address came from, for the message: HOPPER_BIND or server.bind."""
    return "HOPPER_BIND" if os.environ.get("HOPPER_BIND") else "server.bind"


def check_bind(bind: str) -> None:
    """Listen on ``bind`` (HOST:PORT) for an instant, as Gunicorn will (SO_REUSEADDR);
    BindError naming the setting when the address is taken or not this machine's."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, ValueError) as exc:
        raise BindError(f"{bind_source()} {bind}: cannot resolve the address ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "is already in use by another program"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = "is not an address of this machine"
        elif exc.errno == errno.EACCES:
            why = "needs privileges this user does not have (ports below 1024)"
        else:
            why = f"cannot be listened on ({exc.strerror})"
        raise BindError(f"{bind_source()} {bind} {why}; set {bind_source()} to a free"
                        " HOST:PORT") from None
    finally:
        sock.close()

"""A name server the test controls: chosen names answer with chosen addresses, every other name resolves as usual.

It stands in for a DNS change or a rebinding name server (one that answers differently from one lookup to
the next), by replacing socket.getaddrinfo, which every lookup in SigDesk, httpx and httpcore goes through.
"""

from __future__ import annotations

import socket

import pytest


class FakeDNS:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.answers:
                return real(host, port, family, type, proto, flags)
            self.lookups.append(name)
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (ip, int(port or 0), 0, 0) if ":" in ip else (ip, int(port or 0)),
                )
                for ip in self.answers[name]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def answer(self, name: str, *addresses: str) -> None:
        """From now on `name` resolves to these addresses, in this order."""
        self.answers[name] = list(addresses)

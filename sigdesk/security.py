"""Request hooks that keep the product's security promises for every route at once."""

from __future__ import annotations

import ipaddress
import logging
import time

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from sigdesk.addresses import unmapped
from sigdesk.auth import services as accounts
from sigdesk.roles import can
from sigdesk.extensions import csrf
from sigdesk.settings import services as settings
from sigdesk.settings.specs import parse_networks, parse_proxies
from sigdesk.web import PUBLIC, cipher, db_session, error_response, wants_json

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORWARDED_HOPS = 20
SETTINGS_TTL_SECONDS = 5.0
SIGN_IN_ENDPOINTS = frozenset({"auth.login", "auth.verify"})
TWO_FACTOR_EXEMPT = frozenset(
    {"account.two_factor", "account.two_factor_confirm", "auth.logout", "static", "health.healthz"}
)
# Set by the desktop's own server (sigdesk.desktop) on requests from this machine; a WSGI key, so no
# header can set it.
DESKTOP_WINDOW = "sigdesk.desktop_window"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
REFUSAL_LOG_SECONDS = 60.0
REFUSAL_LOG_ADDRESSES = 4096


class RefusalLog:
    """Says when to log a refused address: at most once a minute per address, so a scan or a
    reloading browser cannot flood the log. Remembers a bounded number of addresses."""

    def __init__(self, seconds: float = REFUSAL_LOG_SECONDS, limit: int = REFUSAL_LOG_ADDRESSES) -> None:
        self.seconds = seconds
        self.limit = limit
        self.logged_at: dict[str, float] = {}

    def due(self, address: str) -> bool:
        now = time.monotonic()
        last = self.logged_at.get(address)
        if last is not None and now - last < self.seconds:
            return False
        if len(self.logged_at) >= self.limit:
            self.logged_at = {key: at for key, at in self.logged_at.items() if now - at < self.seconds}
            if len(self.logged_at) >= self.limit:
                return False  # a flood of distinct addresses: the first ones of this minute were logged
        self.logged_at[address] = now
        return True


class CachedPolicy:
    """Settings read on every request, refreshed every few seconds instead of every time."""

    def __init__(self) -> None:
        self.loaded_at = 0.0
        self.networks: tuple = ()
        self.trusted_proxies: tuple = ()
        self.require_2fa = False
        self.has_users = False
        self.refusals = RefusalLog()

    def invalidate(self) -> None:
        """Saved settings count on the next request (called on settings.changed, see sigdesk.app)."""
        self.loaded_at = 0.0

    def refresh(self, force: bool = False) -> "CachedPolicy":
        if force or time.monotonic() - self.loaded_at > SETTINGS_TTL_SECONDS or not self.has_users:
            session = db_session()
            text = parse_networks(settings.get(session, cipher(), "server.allowed_networks"))
            self.networks = _networks(text)
            self.trusted_proxies = _networks(parse_proxies(settings.get(session, cipher(), "server.trusted_proxies")))
            self.require_2fa = settings.get(session, cipher(), "security.require_2fa")
            self.has_users = accounts.user_count(session) > 0
            self.loaded_at = time.monotonic()
        return self


def _networks(text: str) -> tuple:
    """The allow-list is exactly what the setting says: loopback too can be left out (see README)."""
    return tuple(ipaddress.ip_network(part, strict=False) for part in text.split(",") if part.strip())


def policy() -> CachedPolicy:
    return current_app.extensions["sigdesk"].policy.refresh()


def _ip(address: str | None):
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().split("%")[0])
    except ValueError:
        return None
    return unmapped(ip)


def _ip_allowed(address: str | None, networks) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    return any(ip in network for network in networks if network.version == ip.version)


def is_loopback(address: str | None) -> bool:
    return _ip_allowed(address, LOOPBACK)


def from_desktop_window() -> bool:
    """A request to the desktop's private server from this machine: the window itself, which must always
    get through (it talks to 127.0.0.1), whatever the allow-list and the trusted proxies say."""
    return bool(request.environ.get(DESKTOP_WINDOW))


def _internet_facing() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return view is not None and bool(getattr(view, "internet_facing", False))


def forwarded_client(peer: str | None, forwarded_for: str, proxies) -> str | None:
    """The client address behind trusted proxies (None: use the peer's own address).

    Like werkzeug's ProxyFix, but only a listed proxy is believed: X-Forwarded-For is read from the
    right, skipping the proxies' own addresses, and the first other address is the client. Anything
    further left was written by the client and is ignored, so a client cannot choose its address."""
    if not proxies or not forwarded_for or not _ip_allowed(peer, proxies):
        return None
    hops = [hop.strip() for hop in forwarded_for.split(",")][-MAX_FORWARDED_HOPS:]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return None  # a garbled header: trust none of it (apply_trusted_proxy refuses the request)
        if not _ip_allowed(hop, proxies):
            return str(ip)
    return None


def apply_trusted_proxy():
    """Runs first: from here on request.remote_addr (the allow-list, rate limits, the audit log, the
    sign-in history) is the client's address when a trusted proxy or tunnel passed the request on.

    A request from a trusted proxy whose client cannot be read (no X-Forwarded-For, a garbled one, or
    only proxies in it) is refused: its own address is loopback or the LAN, which the allow-list admits,
    and a tunnel that adds no header (`ssh -R`) would let the internet in. Routes made for the internet
    (Meta's webhook, signature-checked) still answer it."""
    if from_desktop_window():
        return None
    proxies = policy().trusted_proxies
    client = forwarded_client(request.remote_addr, request.headers.get("X-Forwarded-For", ""), proxies)
    if client is None:
        if proxies and _ip_allowed(request.remote_addr, proxies) and not _internet_facing():
            log.warning("refused a request from a trusted proxy that did not say which client it came from")
            return error_response(
                403,
                "This request came through a trusted proxy without a readable X-Forwarded-For header, so "
                "SigDesk cannot tell who sent it. Configure the proxy to send it, or use the office address.",
            )
        return None
    request.environ["REMOTE_ADDR"] = request.remote_addr = client
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        request.environ["wsgi.url_scheme"] = request.scheme = proto
    return None


def check_allowlist():
    if _internet_facing() or from_desktop_window():
        return None
    current = policy()
    if not _ip_allowed(request.remote_addr, current.networks):
        return _not_allowed(current)
    return None


def allow_command(address: str) -> str:
    """The command that adds `address` to the allow-list as it is now, without showing the list to
    whoever was refused (works in POSIX shells and PowerShell)."""
    key = "server.allowed_networks"
    return f'sigdesk settings set {key} "$(sigdesk settings get {key}),{address}"'


def _not_allowed(current: CachedPolicy):
    """403 naming the address the server saw and the command that lets it in."""
    ip = _ip(request.remote_addr)
    address = str(ip) if ip is not None else None
    if current.refusals.due(address or "?"):
        log.warning("refused %s: not on the allow-list (server.allowed_networks)", address or "an unreadable address")
    if address is None:
        message, command = "SigDesk cannot read the address this request came from, so it is not allowed.", None
    else:
        command = allow_command(address)
        message = (
            f"This address ({address}) is not allowed to use SigDesk: it is not on the allow-list. To let it in, run "
            f"this on the computer SigDesk runs on (it adds {address} to the list):"
        )
    if wants_json():
        return jsonify(error=f"{message} {command}" if command else message, status=403, command=command), 403
    return render_template("error.html", status=403, message=message, command=command), 403


def allow_list_problem(text: str) -> str | None:
    """Why saving this allow-list from the current request would lock its sender out (None: it would not).
    The desktop window is not judged by the allow-list, so it can save any."""
    if from_desktop_window():
        return None
    address = request.remote_addr
    if _ip_allowed(address, _networks(parse_networks(text))):
        return None
    return (
        f"This list leaves out {address}, the address you are using now, so saving it would lock you out. "
        "Add it (or its network), or change the list from the machine SigDesk runs on with "
        "`sigdesk settings set server.allowed_networks ...`."
    )


def check_csrf():
    if request.method in SAFE_METHODS:
        return None
    if request.authorization is not None and current_user.is_authenticated and g.get("token_user_id") is not None:
        return None
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "csrf_exempt", False):
        return None
    csrf.protect()
    return None


def check_access():
    """Deny by default: a view that declares no permission is refused."""
    if request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    permission = getattr(view, "permission", None)
    current = policy()
    if not current.has_users and (permission != PUBLIC or request.endpoint in SIGN_IN_ENDPOINTS):
        return (
            error_response(503, "SigDesk is not set up yet")
            if request.path.startswith("/api/")
            else redirect(url_for("auth.setup"))
        )
    if permission == PUBLIC:
        return None
    if permission is None:
        log.error("view %s declares no permission; refusing", request.endpoint)
        return error_response(403, "This page is not available")
    if not current_user.is_authenticated:
        if request.path.startswith("/api/"):
            return error_response(401, "Authentication required: send 'Authorization: Bearer <token>'")
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    if not can(current_user.role, permission):
        return error_response(403, "Your role does not allow this. Ask an owner or admin.")
    if (
        current.require_2fa
        and not current_user.totp_enabled
        and g.get("token_user_id") is None
        and request.endpoint not in TWO_FACTOR_EXEMPT
    ):
        return redirect(url_for("account.two_factor"))
    return None


def no_store(response):
    """Nothing a signed-in person sees, and no API answer, is kept by the browser or a proxy cache:
    pages that show a secret once (API tokens, recovery codes, TOTP keys, verify tokens) least of all.
    Responses that chose their own caching (media, static files) keep it, except JSON and secret pages."""
    view = current_app.view_functions.get(request.endpoint or "")
    if (
        getattr(view, "shows_secret", False)
        or response.mimetype == "application/json"
        or request.path.startswith("/api/")
    ):
        response.headers["Cache-Control"] = "no-store"
    elif request.endpoint != "static" and current_user.is_authenticated:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
    )
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def install(app: Flask) -> None:
    app.before_request(apply_trusted_proxy)
    app.before_request(check_allowlist)
    app.before_request(check_access)
    app.before_request(check_csrf)
    app.after_request(security_headers)
    app.after_request(no_store)

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        return error_response(400, f"Security check failed ({error.description}). Reload the page and try again.")

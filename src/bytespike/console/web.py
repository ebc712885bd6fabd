"""What every console page shares: templates and their filters, the security headers,
forms with their CSRF token, the signed-in viewer, and how refusals are shown.

Failure policy: a service's refusal (BytespikeError) is shown on an HTML page with its
status, never as the API's JSON; anything unforeseen is logged and shown as a plain 500
page. A POST whose CSRF token is missing or wrong is refused (403) before anything runs.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
import orjson
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bytespike.console import sessions, tokens
from bytespike.console.repo import Session
from bytespike.context import Context
from bytespike.errors import BytespikeError, PayloadTooLarge, PermissionDenied

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
CSRF_FIELD = "csrf_token"
ANON_CSRF_COOKIE = "bytespike_csrf"  # double-submit token of the forms before sign-in
FORM_LIMIT = 64 * 1024

# No inline script or style, no framing, forms post only here: the page's own files only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware of the console: every answer carries SECURITY_HEADERS; pages (not the
    static files) are never stored by a cache, as they show balances and secrets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{scope.get('root_path', '')}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- formatting ---------------------------------------------------------------------------


def usd(amount: float | int | None) -> str:
    """$31.40: two decimals at least, up to six when the amount has them; None is '-'."""
    if amount is None:
        return "-"
    value = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{sign}${int(whole):,}.{frac.ljust(2, '0')}"


def amount(usd_value: float | int | None) -> str:
    """An amount for a form field: 20.00, 0.000125 (what parse_usd reads back exactly)."""
    return "" if usd_value is None else usd(usd_value).replace("$", "").replace(",", "")


def when(iso: str | None) -> Markup:
    """A UTC instant as a <time> element: UTC text, made local by console.js, UTC on hover."""
    if not iso:
        return Markup("-")
    shown = iso.replace("T", " ").removesuffix("Z")[:16] + " UTC"
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, shown)


def json_script(payload: Any) -> Markup:
    """JSON for a <script type="application/json"> element: the API's bytes (orjson), with
    only <, > and & escaped (as \\u003c...), so no text inside can end the element."""
    text = orjson.dumps(payload).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 -- escaped above for the one context it goes in


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["usd"] = usd
ENV.filters["when"] = when
ENV.filters["amount"] = amount
ENV.filters["json_script"] = json_script


# --- who is asking ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Membership:
    org_id: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Viewer:
    session: Session
    memberships: list[Membership] = field(default_factory=list)

    @property
    def user_id(self) -> int:
        return self.session.user_id

    @property
    def username(self) -> str:
        return self.session.username

    @property
    def tier(self) -> str:
        return self.session.tier

    @property
    def is_operator(self) -> bool:
        return self.session.is_operator

    def role_in(self, org_id: int | None) -> str | None:
        return next((m.role for m in self.memberships if m.org_id == org_id), None)


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in form."""


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def base(request: Request) -> str:
    """The console's own prefix (/console, or deeper behind a proxy's root path)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


# --- forms --------------------------------------------------------------------------------


class Form(dict[str, str]):
    """A urlencoded form: the last value of each field, and every value of repeated ones."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]

    def text(self, name: str) -> str:
        return self.get(name, "").strip()


async def read_form(request: Request) -> Form:
    """The body of a console form (urlencoded, at most FORM_LIMIT bytes; 413 past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > FORM_LIMIT:
        raise PayloadTooLarge("the form is too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise PayloadTooLarge("the form is too large")
    return Form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def check_csrf(form: Form, expected: str | None) -> None:
    given = form.get(CSRF_FIELD, "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDenied("the form's CSRF token is missing or wrong: reload the page")


def anon_csrf(request: Request) -> str:
    """The double-submit token of the anonymous forms: the cookie's, or a new one."""
    return request.cookies.get(ANON_CSRF_COOKIE) or tokens.mint()


# --- responses ----------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    values = {
        "notice": None,
        "error": None,
        "active": "",
        "created": None,
        "secret": None,
        "invite": None,
        **values,
    }
    html = ENV.get_template(template).render(
        base=base(request), viewer=viewer, path=request.url.path, **values
    )
    return HTMLResponse(html, status_code=status)


def redirect(request: Request, to: str) -> RedirectResponse:
    return RedirectResponse(f"{base(request)}{to}", status_code=303)


def set_session_cookie(request: Request, response: Response, new: sessions.NewSession) -> None:
    response.set_cookie(
        sessions.SESSION_COOKIE,
        new.token,
        max_age=int(sessions.LIFETIME.total_seconds()),
        path=base(request) or "/",
        httponly=True,
        secure=secure(request),
        samesite="lax",
    )


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{base(request)}/login?next={quote(target)}", status_code=303)


Page = Callable[[Request], Awaitable[Response]]


def error_page(request: Request, exc: BytespikeError, viewer: Viewer | None = None) -> Response:
    return render(
        request, "error.html", viewer=viewer, status=exc.status, message=exc.message, exc=exc
    )

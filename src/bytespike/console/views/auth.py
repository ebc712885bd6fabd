"""/console/login, /console/logout and /console/invite: signing in and out, and choosing a
password from an invite link. The forms before sign-in carry a double-submit CSRF token
(a cookie and the same value in the form)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bytespike.audit import log as audit
from bytespike.console import credentials, passwords, sessions
from bytespike.console.access import viewer_of
from bytespike.console.web import (
    ANON_CSRF_COOKIE,
    anon_csrf,
    base,
    check_csrf,
    ctx_of,
    error_page,
    read_form,
    redirect,
    render,
    secure,
    set_session_cookie,
)
from bytespike.errors import BytespikeError, InvalidRequest


def _next(request: Request, wanted: str | None) -> str:
    """Where to go after signing in: a console page named by `next`, else the dashboard."""
    home = base(request) + "/"
    if wanted and wanted.startswith(base(request) + "/") and not wanted.startswith("//"):
        return wanted
    return home


def _with_anon_csrf(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        ANON_CSRF_COOKIE,
        token,
        path=base(request) or "/",
        httponly=True,
        secure=secure(request),
        samesite="strict",
    )
    return response


async def login(request: Request) -> Response:
    if request.method == "POST":
        return await _sign_in(request)
    if await viewer_of(request) is not None:
        return RedirectResponse(_next(request, request.query_params.get("next")), 303)
    token = anon_csrf(request)
    page = render(
        request, "login.html", csrf=token, next=request.query_params.get("next", ""), username=""
    )
    return _with_anon_csrf(request, page, token)


async def _sign_in(request: Request) -> Response:
    form = await read_form(request)
    try:
        check_csrf(form, request.cookies.get(ANON_CSRF_COOKIE))
    except BytespikeError as exc:
        return error_page(request, exc)
    client = request.client.host if request.client else "unknown"
    try:
        new = await sessions.sign_in(
            ctx_of(request), form.text("username"), form.get("password", ""), client
        )
    except BytespikeError as exc:
        token = anon_csrf(request)
        page = render(
            request,
            "login.html",
            status=exc.status,
            error=exc.message,
            csrf=token,
            next=form.get("next", ""),
            username=form.text("username"),
        )
        return _with_anon_csrf(request, page, token)
    response = RedirectResponse(_next(request, form.get("next")), status_code=303)
    set_session_cookie(request, response, new)
    response.delete_cookie(ANON_CSRF_COOKIE, path=base(request) or "/")
    return response


async def logout(request: Request) -> Response:
    viewer = await viewer_of(request)
    if request.method != "POST" or viewer is None:
        return redirect(request, "/login")
    form = await read_form(request)
    try:
        check_csrf(form, viewer.session.csrf_token)
    except BytespikeError as exc:
        return error_page(request, exc, viewer)
    await sessions.sign_out(ctx_of(request), viewer.session.id)
    response = redirect(request, "/login")
    response.delete_cookie(sessions.SESSION_COOKIE, path=base(request) or "/")
    return response


async def invite(request: Request) -> Response:
    ctx = ctx_of(request)
    if request.method == "POST":
        return await _accept(request)
    token = request.query_params.get("token", "")
    username = await credentials.invited_user(ctx, token) if token else None
    if username is None:
        return error_page(
            request,
            InvalidRequest("this invite link is unknown, used or expired: ask for a new one"),
        )
    csrf = anon_csrf(request)
    page = render(
        request,
        "invite.html",
        csrf=csrf,
        token=token,
        username=username,
        min_length=passwords.MIN_LENGTH,
    )
    return _with_anon_csrf(request, page, csrf)


async def _accept(request: Request) -> Response:
    ctx = ctx_of(request)
    form = await read_form(request)
    try:
        check_csrf(form, request.cookies.get(ANON_CSRF_COOKIE))
        if form.get("password", "") != form.get("password_again", ""):
            raise InvalidRequest("the two passwords differ")
        invited = await credentials.invited_user(ctx, form.get("token", ""))
        request_id = request.scope.get("state", {}).get("request_id")
        with audit.acting(f"console:{invited or 'invite'}", request_id):
            user_id = await credentials.accept_invite(
                ctx, form.get("token", ""), form.get("password", "")
            )
    except BytespikeError as exc:
        username = await credentials.invited_user(ctx, form.get("token", ""))
        if username is None:
            return error_page(request, exc)
        csrf = anon_csrf(request)
        page = render(
            request,
            "invite.html",
            status=exc.status,
            error=exc.message,
            csrf=csrf,
            token=form.get("token", ""),
            username=username,
            min_length=passwords.MIN_LENGTH,
        )
        return _with_anon_csrf(request, page, csrf)
    new = await sessions.start(ctx, user_id)
    response = redirect(request, "/")
    set_session_cookie(request, response, new)
    response.delete_cookie(ANON_CSRF_COOKIE, path=base(request) or "/")
    return response

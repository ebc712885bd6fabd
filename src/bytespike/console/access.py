"""Who may see a page: the signed-in viewer (else a redirect to the sign-in form), the
operators' area, and every POST's CSRF token, checked before its handler runs. Changes a
page makes are audited as "console:<username>", under the request's id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from bytespike.audit import log as audit
from bytespike.console import sessions
from bytespike.console.web import (
    Form,
    Membership,
    Viewer,
    check_csrf,
    ctx_of,
    error_page,
    login_redirect,
    read_form,
    render,
)
from bytespike.errors import BytespikeError, InternalError, PermissionDenied
from bytespike.orgs import repo as orgs_repo

log = logging.getLogger(__name__)

Get = Callable[[Request, Viewer], Awaitable[Response]]
Post = Callable[[Request, Viewer, Form], Awaitable[Response]]


async def viewer_of(request: Request) -> Viewer | None:
    ctx = ctx_of(request)
    async with ctx.db.read() as conn:  # one read for the session and the viewer's orgs
        found = await sessions.lookup(conn, request.cookies.get(sessions.SESSION_COOKIE))
        orgs = [] if found is None else await orgs_repo.of_user(conn, found.user_id)
    if found is None or not await sessions.keep(ctx, found):
        return None
    return Viewer(found, [Membership(int(o.id), str(o.name), str(o.role)) for o in orgs])


def page(
    get: Get | None = None, post: Post | None = None, *, operator: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint: GET renders `get`, POST runs `post` (CSRF checked first)."""

    async def endpoint(request: Request) -> Response:
        viewer = await viewer_of(request)
        if viewer is None:
            return login_redirect(request)
        try:
            if operator and not viewer.is_operator:
                raise PermissionDenied("this page is for operators")
            if request.method == "POST" and post is not None:
                form = await read_form(request)
                check_csrf(form, viewer.session.csrf_token)
                request_id = request.scope.get("state", {}).get("request_id")
                with audit.acting(f"console:{viewer.username}", request_id):
                    return await post(request, viewer, form)
            if get is None:
                return render(
                    request,
                    "error.html",
                    viewer=viewer,
                    status=405,
                    message="method not allowed",
                    exc=None,
                )
            return await get(request, viewer)
        except BytespikeError as exc:
            return error_page(request, exc, viewer)
        except Exception:
            log.exception("console page failed", extra={"path": request.url.path})
            return error_page(request, InternalError("internal error; it has been logged"), viewer)

    return endpoint

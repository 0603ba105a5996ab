"""FastAPI dependencies: who is calling, and may they. Routes declare the least role they need
with ``ViewerDep`` / ``EditorDep`` / ``AdminDep`` (or ``require(role)`` on a router)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import (
    Depends,
    HTTPException,
    Request,
    Response,
    WebSocket,
    WebSocketException,
    status,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hostpulse.server.auth.exceptions import AuthError, Forbidden, Throttled, Unauthenticated
from hostpulse.server.auth.principals import Agent, User
from hostpulse.server.auth.roles import Role
from hostpulse.server.auth.service import AuthService, bearer

CLOSE_POLICY = 1008  # WebSocket "policy violation": no valid token

_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from POST /api/v1/auth/login (users) or an agent key "
    "(POST /api/v1/ingest only).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)]


def http_error(exc: AuthError) -> HTTPException:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    return HTTPException(exc.status, exc.reason, headers=headers or None)


async def no_store(response: Response) -> None:
    """On answers that carry a secret (tokens, keys): no cache, proxy or browser keeps them."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NO_STORE = [Depends(no_store)]
"""``dependencies=NO_STORE`` on every route whose answer issues a token or key."""


def auth_of(app_state: object) -> AuthService:
    service = getattr(app_state, "auth", None)
    if not isinstance(service, AuthService):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "authentication is not running")
    return service


async def get_auth(request: Request) -> AuthService:
    return auth_of(request.app.state)


AuthDep = Annotated[AuthService, Depends(get_auth)]


async def current_user(auth: AuthDep, creds: Credentials) -> User:
    return await user_of(auth, creds.credentials if creds else None)


async def user_of(auth: AuthService, credential: str | None) -> User:
    """The user behind a bearer credential (``current_user``), HTTPException if none."""
    try:
        return await auth.user(credential)
    except AuthError as exc:
        raise http_error(exc) from None


def require(role: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency: the signed-in user, who must have at least ``role`` (else 403)."""

    async def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.role.allows(role):
            raise http_error(Forbidden(f"this needs the {role.value} role (you are {user.role})"))
        return user

    return check


async def current_agent(auth: AuthDep, creds: Credentials) -> Agent:
    try:
        return await auth.agent(creds.credentials if creds else None)
    except AuthError as exc:
        raise http_error(exc) from None


async def method_role(request: Request, auth: AuthDep, creds: Credentials) -> User:
    """Reads (GET) need a viewer, every other method an editor (the alerts router)."""
    user = await current_user(auth, creds)
    needed = Role.viewer if request.method in ("GET", "HEAD") else Role.editor
    if not user.role.allows(needed):
        raise http_error(Forbidden(f"this needs the {needed.value} role (you are {user.role})"))
    return user


ViewerDep = Annotated[User, Depends(require(Role.viewer))]
EditorDep = Annotated[User, Depends(require(Role.editor))]
AdminDep = Annotated[User, Depends(require(Role.admin))]
AgentDep = Annotated[Agent, Depends(current_agent)]


async def websocket_user(websocket: WebSocket, token: str | None = None) -> User:
    """The viewer+ user of a WebSocket, from ``token`` (the ``bearer.<token>`` subprotocol a
    browser offers, see ``api/ws.py``) or ``Authorization: Bearer``; anything else is refused
    with close code 1008."""
    credential = token or bearer(websocket.headers.get("authorization"))
    try:
        return await auth_of(websocket.app.state).user(credential)
    except (AuthError, HTTPException) as exc:
        reason = exc.reason if isinstance(exc, AuthError) else str(exc.detail)
        raise WebSocketException(CLOSE_POLICY, reason) from None

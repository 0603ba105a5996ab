"""/auth: sign in, renew, sign out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from hostpulse.server.api.auth_models import LoginIn, Me, RefreshIn, TokensOut
from hostpulse.server.api.models import Problem
from hostpulse.server.auth.deps import NO_STORE, AuthDep, ViewerDep, http_error
from hostpulse.server.auth.exceptions import AuthError
from hostpulse.server.auth.principals import Tokens

router = APIRouter(prefix="/auth", tags=["auth"])

_401: dict[int | str, dict[str, object]] = {401: {"model": Problem}}
_LOGIN_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Wrong username or password."},
    429: {"model": Problem, "description": "Too many failed logins; see Retry-After."},
    503: {"model": Problem, "description": "Too many password checks at once; see Retry-After."},
}


def _out(t: Tokens) -> TokensOut:
    return TokensOut(
        access_token=t.access_token,
        refresh_token=t.refresh_token,
        expires_in=t.expires_in,
        user=Me.of(t.user),
    )


def _fail(exc: AuthError) -> HTTPException:
    return http_error(exc)


@router.post(
    "/login",
    response_model=TokensOut,
    responses=_LOGIN_ERRORS,
    summary="Sign in",
    dependencies=NO_STORE,
)
async def login(body: LoginIn, request: Request, auth: AuthDep) -> TokensOut:
    """An access token (JWT, ``expires_in`` seconds) and a refresh token. Ten failed logins
    within a minute for one account or from one address are answered 429 with Retry-After
    (each attempt counts from the moment it arrives, concurrent ones included); 503 with
    Retry-After when more password checks wait than the server allows."""
    address = request.client.host if request.client else "unknown"
    try:
        return _out(await auth.users.login(body.username, body.password, address))
    except AuthError as exc:
        raise _fail(exc) from None


@router.post(
    "/refresh",
    response_model=TokensOut,
    responses=_401,
    summary="Renew the tokens",
    dependencies=NO_STORE,
)
async def refresh(body: RefreshIn, auth: AuthDep) -> TokensOut:
    """A new pair; the refresh token sent is revoked (using it again gives 401)."""
    try:
        return _out(await auth.users.refresh(body.refresh_token))
    except AuthError as exc:
        raise _fail(exc) from None


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def logout(body: RefreshIn, auth: AuthDep) -> Response:
    """Revokes the refresh token (the access token expires on its own within minutes)."""
    await auth.users.logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=Me, responses=_401, summary="The signed-in user")
async def me(user: ViewerDep) -> Me:
    return Me.of(user)

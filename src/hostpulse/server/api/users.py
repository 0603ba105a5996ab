"""/users: accounts and roles (admin; a user may change their own password)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from hostpulse.server.api.auth_models import UserIn, UserOut, UserPatch
from hostpulse.server.api.models import Problem
from hostpulse.server.auth.deps import AdminDep, AuthDep, ViewerDep, http_error
from hostpulse.server.auth.exceptions import AuthError

router = APIRouter(prefix="/users", tags=["users"])
_NO_USER: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No such user."}
}
Username = Annotated[str, Path(min_length=1, max_length=64)]


def _fail(exc: AuthError) -> HTTPException:
    return http_error(exc)


@router.get("", response_model=list[UserOut], summary="All users")
async def list_users(_: AdminDep, auth: AuthDep) -> list[UserOut]:
    return [UserOut.of(u) for u in await auth.users.list_users()]


@router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": Problem, "description": "A user with that name exists."}},
)
async def create_user(body: UserIn, _: AdminDep, auth: AuthDep) -> UserOut:
    """422 when the password has fewer than 12 characters; 409 when the name exists."""
    try:
        return UserOut.of(await auth.users.create(body.username, body.password, body.role))
    except AuthError as exc:
        raise _fail(exc) from None


@router.patch(
    "/{username}",
    response_model=UserOut,
    responses={
        **_NO_USER,
        403: {"model": Problem, "description": "Not allowed, or a wrong current_password."},
        409: {"model": Problem, "description": "The last admin stays admin."},
        429: {"model": Problem, "description": "Too many wrong current passwords."},
        503: {"model": Problem, "description": "Too many password checks at once."},
    },
)
async def update_user(
    username: Username, body: UserPatch, user: ViewerDep, auth: AuthDep
) -> UserOut:
    """Admins change any user's role or password; others only their own password. Changing
    your own password needs ``current_password`` (422 without it, 403 when wrong; wrong ones
    count against the account's login throttle)."""
    try:
        row = await auth.users.update(
            user,
            username,
            role=body.role,
            password=body.password,
            current_password=body.current_password,
        )
    except AuthError as exc:
        raise _fail(exc) from None
    return UserOut.of(row)


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_NO_USER, 409: {"model": Problem, "description": "The last admin stays."}},
)
async def delete_user(username: Username, _: AdminDep, auth: AuthDep) -> Response:
    """409 when it would remove the last admin."""
    try:
        await auth.users.delete(username)
    except AuthError as exc:
        raise _fail(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Request and response models of the auth routes (see docs/security.md)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from hostpulse.server.auth.principals import User
from hostpulse.server.auth.repository import EnrollmentRow, KeyRow, UserRow
from hostpulse.server.auth.roles import Role


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class Me(BaseModel):
    username: str
    role: Role

    @classmethod
    def of(cls, user: User) -> Me:
        return cls(username=user.username, role=user.role)


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: Me


class UserOut(BaseModel):
    username: str
    role: Role
    created_at: int = Field(description="Epoch milliseconds.")

    @classmethod
    def of(cls, row: UserRow) -> UserOut:
        return cls(username=row.username, role=Role(row.role), created_at=row.created_ms)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=12, max_length=1024, description="At least 12 characters.")
    role: Role = Role.viewer


class UserPatch(BaseModel):
    role: Role | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1024)
    current_password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Your current password: required to change your own password (an admin "
        "setting another user's password does not send it).",
    )


class AgentKeyOut(BaseModel):
    id: int
    host_id: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    @classmethod
    def of(cls, row: KeyRow) -> AgentKeyOut:
        return cls(
            id=row.id,
            host_id=row.host_id,
            prefix=row.prefix,
            created_at=row.created_ms,
            last_used_at=row.last_used_ms,
            revoked_at=row.revoked_ms,
        )


class NewKeyOut(BaseModel):
    id: int
    host_id: str
    key: str = Field(description="The agent key; shown only now, keep it secret.")


class HostKeyOut(BaseModel):
    host_id: str
    key: str = Field(description="The agent key; shown only now, keep it secret.")


class EnrollmentOut(BaseModel):
    id: int
    host_id: str | None
    expires_at: int
    single_use: bool
    uses: int
    max_hosts: int = Field(description="Hosts (enrollments) the token allows in all.")
    created_at: int

    @classmethod
    def of(cls, row: EnrollmentRow, max_hosts: int) -> EnrollmentOut:
        return cls(
            id=row.id,
            host_id=row.host_id,
            expires_at=row.expires_ms,
            single_use=row.single_use,
            uses=row.uses,
            max_hosts=max_hosts,
            created_at=row.created_ms,
        )


class EnrollmentIn(BaseModel):
    host_id: str | None = Field(default=None, min_length=1, max_length=200)
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    single_use: bool = True
    max_hosts: int | None = Field(
        default=None,
        ge=1,
        description="Hosts a multi-use token may enroll (default: the server's "
        "enrollment_max_hosts, 1000; at most its max_hosts, 10000); 1 for a single-use token.",
    )


class NewEnrollmentOut(BaseModel):
    id: int
    token: str = Field(description="The enrollment token; shown only now.")
    host_id: str | None
    expires_at: int
    single_use: bool
    max_hosts: int = Field(description="Hosts (enrollments) the token allows in all.")
    command: str = Field(description="What to run on a host where hostpulse is installed.")
    install_command: str = Field(
        description="What to paste on a new host (as root): installs the agent from this "
        "server, enrolls it and starts its systemd service."
    )


class EnrollIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    host_id: str = Field(min_length=1, max_length=200)
    hostname: str | None = Field(default=None, max_length=255)

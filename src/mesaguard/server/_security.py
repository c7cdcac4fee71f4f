"""Who is calling: bearer tokens for the API, session cookies and CSRF tokens for the web UI."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request, status
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..gate import Role
from ._auth import AuthStore, Principal, Session, same_secret
from ._errors import AuthError

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "LoginRequired",
    "LoginCsrf",
    "api_principal",
    "check_csrf",
    "require_role",
]

SESSION_COOKIE = "mg_session"
LOGIN_COOKIE = "mg_login"


class LoginRequired(Exception):
    """The web UI needs a live session; the handler redirects to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url
        super().__init__(next_url)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": 'Bearer realm="mesaguard"'},
    )


def api_principal(auth: AuthStore, request: Request) -> Principal:
    """The caller of an API route, from ``Authorization: Bearer <token>``."""
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("an API token is required (Authorization: Bearer <token>)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    try:
        return auth.authenticate_token(token.strip())
    except AuthError as error:
        raise _unauthorized(str(error)) from None


def require_role(principal: Principal, *roles: Role) -> Principal:
    """``principal`` if its role is one of ``roles``; 403 otherwise."""
    if principal.role not in roles:
        allowed = " or ".join(str(r) for r in roles)
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail=f"{principal.name} has the role {principal.role}; this needs {allowed}",
        )
    return principal


def ui_session(auth: AuthStore, request: Request) -> Session:
    """The live browser session of a reviewer or admin; `LoginRequired` otherwise."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    session = auth.session(raw) if raw else None
    if session is None or session.principal.role is Role.AGENT:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return session


def check_csrf(session: Session, submitted: str | None) -> None:
    """Refuse a form POST whose CSRF token is missing or not this session's (403)."""
    if not submitted or not same_secret(submitted, session.csrf_token):
        raise HTTPException(
            status_code=status.HTTP_403_FORBIDDEN,
            detail="the form's CSRF token is missing or wrong; reload the page and try again",
        )


class LoginCsrf:
    """CSRF for the login form, before there is a session: a signed double-submit token.

    The login page sets a random nonce cookie and puts the nonce, signed with the server's key
    and timestamped, into the form; a POST must bring both and they must match.
    """

    def __init__(self, secret: str, max_age: int = 3600) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="mesaguard-login")
        self.max_age = max_age

    def issue(self, request: Request) -> tuple[str, str]:
        """The nonce for the cookie (reused if the browser has one) and the form token."""
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        return nonce, str(self._serializer.dumps(nonce))

    def check(self, request: Request, submitted: str | None) -> None:
        """Refuse a login POST whose token is missing, forged, stale or not this browser's."""
        nonce = request.cookies.get(LOGIN_COOKIE)
        try:
            signed = self._serializer.loads(submitted or "", max_age=self.max_age)
        except (BadSignature, SignatureExpired):
            signed = None
        if not nonce or not isinstance(signed, str) or not same_secret(signed, nonce):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail="the login form's CSRF token is missing or wrong; reload the page",
            )


def set_cookie(
    response: Response, name: str, value: str, *, max_age: int, secure: bool, path: str = "/"
) -> None:
    """Set a cookie the page's scripts cannot read and other sites cannot send."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure,
        path=path,
    )

"""Users and passwords: argon2 hashes, never plain text.

The password rule is a minimum length (``MIN_PASSWORD``, 8 characters) and nothing else: long
pass phrases beat composition rules (NIST SP 800-63B). Logins, the lockout and a user's own
password change are in :mod:`crm.core.logins`."""
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from crm.core.errors import Conflict, ValidationFailed
from crm.core.tables import users

hasher = PasswordHasher()
MIN_PASSWORD = 8


def hash_password(password):
    return hasher.hash(password)


def password_problem(password):
    """Why ``password`` is not acceptable, or None."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    return None


def set_password(session, user_id, password):
    """Store a new password (hashed); refuses one that breaks the rule."""
    problem = password_problem(password)
    if problem:
        raise ValidationFailed(problem, {"password": "too short"})
    session.execute(users.update().where(users.c.id == user_id).values(password_hash=hash_password(password)))


def verify_password(password_hash, password):
    try:
        return bool(password_hash) and hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(session, username, password, *, admin=False, display_name=None, email=None, department_id=None, now):
    username = (username or "").strip()
    if not username:
        raise ValidationFailed("username is required", {"username": "required"})
    problem = password_problem(password)
    if problem:
        raise ValidationFailed(problem, {"password": "too short"})
    if session.execute(sa.select(users.c.id).where(users.c.username == username)).first():
        raise Conflict(f"user {username!r} exists already", {"username": "taken"})
    values = dict(username=username, password_hash=hash_password(password), display_name=display_name or username,
                  email=email, department_id=department_id, is_admin=admin, active=True, created_at=now)
    return session.execute(users.insert().values(values).returning(users.c.id)).scalar()


def get_user(session, user_id=None, username=None):
    stmt = sa.select(users)
    stmt = stmt.where(users.c.id == user_id) if user_id is not None else stmt.where(users.c.username == username)
    row = session.execute(stmt).mappings().first()
    return dict(row) if row else None

"""Attachments: files kept under the instance's ``files/`` folder, described in ``crm_attachments``.

Files are stored as ``files/YYYY/MM/<random>_<name>``: random so that names never collide or
reveal each other, the original name kept for people. Only the database row says which record a
file belongs to, so several app servers sharing ``files/`` (e.g. over NFS) agree.
"""
import hashlib
import re
import secrets
import shutil
from pathlib import Path

import sqlalchemy as sa

from crm.core.errors import NotFound, ValidationFailed
from crm.core.tables import attachments

DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def _safe_name(filename):
    name = Path(str(filename).replace("\\", "/")).name
    name = re.sub(r"[^\w.\-\u4e00-\u9fff]+", "_", name).strip("._") or "file"
    return name[:120]


def save(records, stream, filename, content_type=None, entity=None, record_id=None, field=None):
    """Store ``stream`` (a binary file object) and return its attachment row as a dict."""
    runtime = records.runtime
    limit = int(runtime.settings.get("crm.max_upload_bytes", DEFAULT_MAX_BYTES))
    now = records.now()
    relative = Path(f"{now:%Y}") / f"{now:%m}" / f"{secrets.token_hex(8)}_{_safe_name(filename)}"
    target = runtime.instance_dir / "files" / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with open(target, "wb") as out:
            while chunk := stream.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(f"file larger than {limit // (1024 * 1024)} MB", {"file": "too large"})
                digest.update(chunk)
                out.write(chunk)
        row = dict(entity=entity, record_id=record_id, field=field, filename=Path(str(filename)).name[:255] or "file",
                   content_type=content_type, size=size, sha256=digest.hexdigest(), path=relative.as_posix(),
                   created_at=now, created_by=records.user_id)
        row["id"] = records.session.execute(attachments.insert().values(row).returning(attachments.c.id)).scalar()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return row


def get(records, attachment_id):
    row = records.session.execute(sa.select(attachments).where(attachments.c.id == attachment_id)).mappings().first()
    if row is None:
        raise NotFound(f"no attachment {attachment_id}")
    return dict(row)


def path_of(records, row):
    return records.runtime.instance_dir / "files" / row["path"]


def for_record(records, entity, record_id):
    stmt = sa.select(attachments).where(attachments.c.entity == entity, attachments.c.record_id == record_id).order_by(attachments.c.id)
    return [dict(r) for r in records.session.execute(stmt).mappings()]


def copy_to(records, row, destination):
    shutil.copyfile(path_of(records, row), destination)

"""Files attached to announcements: a PDF flyer or an image, size-limited, kept in the data
folder (``<data>/attachments/<token>``) and served by the gateway at an unguessable address
(``/files/{token}/{filename}``, 192 random bits). E-mail carries the file itself; SMS, Telegram
and WhatsApp carry the short link.

Only PDF, PNG, JPEG, GIF and WebP are accepted, recognised by their first bytes (a renamed
executable is refused whatever its name says), up to ``http.max_attachment_bytes``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select

from gateway.errors import StaffFacingError
from gateway.staff_text import S_, StaffNote
from gateway.storage.models import AttachmentFile

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "ALLOWED_TYPES",
    "AttachmentError",
    "StoredAttachment",
    "attachment_path",
    "find_attachment",
    "sniff_type",
    "store_attachment",
]

#: Accepted types and their first bytes.
ALLOWED_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


class AttachmentError(StaffFacingError):
    """A file that cannot be attached (too large, not a PDF or an image, empty)."""


TOO_LARGE = S_("%(filename)s: larger than the %(limit)s MB limit")
EMPTY = S_("%(filename)s: the file is empty")
NOT_A_DOCUMENT = S_("%(filename)s: not a PDF or an image (PNG, JPEG, GIF, WebP)")
NOT_A_TOKEN = S_("not an attachment token")


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """An attachment as templates and channels see it."""

    token: str
    filename: str
    content_type: str
    size: int
    url: str | None

    def as_context(self) -> dict[str, Any]:
        """What a template reads (``attachment.name``, ``.url``, ``.size``, ``.type``)."""
        return {
            "token": self.token,
            "name": self.filename,
            "url": self.url,
            "size": self.size,
            "type": self.content_type,
        }


def sniff_type(head: bytes) -> str | None:
    """The accepted type whose signature ``head`` starts with (WebP: RIFF....WEBP)."""
    for content_type, signatures in ALLOWED_TYPES.items():
        if any(head.startswith(s) for s in signatures):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _safe_filename(name: str) -> str:
    """A file name safe in a URL path, a Content-Disposition header and a file system."""
    base = unicodedata.normalize("NFKC", Path(name.replace("\\", "/")).name).strip()
    base = re.sub(r"[\x00-\x1f\x7f\"<>|:*?/]+", "", base)
    base = re.sub(r"\s+", " ", base)[:120].strip(" .")
    return base or "attachment"


def attachment_path(gw: Gateway, token: str) -> Path:
    """Where the file of ``token`` lies."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token):
        raise AttachmentError(StaffNote(NOT_A_TOKEN))
    return gw.data_dir / "attachments" / token


def _url(gw: Gateway, token: str, filename: str) -> str | None:
    base = gw.config.http.public_base_url
    return f"{base}/files/{token}/{quote(filename)}" if base else None


async def store_attachment(
    gw: Gateway, filename: str, chunks: AsyncIterator[bytes], created_by: str | None = None
) -> StoredAttachment:
    """Write an uploaded file (streamed) and record it; refuse a file over the size limit or of
    a type that is not a PDF or an image, keeping nothing of it."""
    limit = gw.config.http.max_attachment_bytes
    token = secrets.token_urlsafe(24)
    folder = gw.data_dir / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / token
    partial = folder / f".{token}.part"
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with partial.open("wb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise AttachmentError(
                        StaffNote(
                            TOO_LARGE, {"filename": _safe_filename(filename), "limit": str(limit // 2**20)}
                        )
                    )
                if len(head) < 16:
                    head += chunk[: 16 - len(head)]
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if size == 0:
            raise AttachmentError(StaffNote(EMPTY, {"filename": _safe_filename(filename)}))
        content_type = sniff_type(head)
        if content_type is None:
            raise AttachmentError(StaffNote(NOT_A_DOCUMENT, {"filename": _safe_filename(filename)}))
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    name = _safe_filename(filename)
    async with gw.db.session() as session:
        session.add(
            AttachmentFile(
                token=token,
                filename=name,
                content_type=content_type,
                size=size,
                sha256=digest.hexdigest(),
                created_by=created_by,
            )
        )
        await session.commit()
    return StoredAttachment(token, name, content_type, size, _url(gw, token, name))


async def find_attachment(gw: Gateway, token: str) -> StoredAttachment | None:
    """The attachment of ``token``, if there is one."""
    async with gw.db.session() as session:
        row = await session.scalar(select(AttachmentFile).where(AttachmentFile.token == token))
    if row is None:
        return None
    return StoredAttachment(
        row.token, row.filename, row.content_type, row.size, _url(gw, row.token, row.filename)
    )

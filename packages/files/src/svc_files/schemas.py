"""What a client may send (the list query) and what it gets back (Public). Uploads are
multipart, not JSON: ``intake`` reads them."""

from __future__ import annotations

from svc_core import Id, PageQuery, Schema, Timestamp, fields


class FileListQuery(PageQuery):
    pass


class FileOut(Schema):
    """The public shape: only these fields ever leave the service (never the owner)."""

    id = Id()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    created_at = Timestamp()

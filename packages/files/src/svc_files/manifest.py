"""What the file service is: streaming upload and download with content sniffing, local or S3
storage, and resumable uploads (tus 1.0.0); every upload (tus completions included) and delete is
audited."""

from __future__ import annotations

from svc_core import Audit, Auth, Mongo, Service
from svc_files.parts import PARTS, expire_uploads
from svc_files.repository import INDEXES
from svc_files.settings import FilesSettings
from svc_files.views import routes

service = Service(
    name="files",
    port=3006,
    settings=FilesSettings,
    routes=routes,
    uses=[Mongo(INDEXES), Auth(), Audit()],
    parts=PARTS,
    background=[expire_uploads],
)
create_app = service.create_app

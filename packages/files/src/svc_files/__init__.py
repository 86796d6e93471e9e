"""File service: streaming upload and download, content sniffing, local and S3 storage."""

from svc_files.manifest import create_app, service
from svc_files.settings import FilesSettings

__all__ = ["FilesSettings", "create_app", "service"]

"""File service: streaming upload and download, content sniffing, storage."""

"""The inbox → library pipeline: scan, identify, deduplicate, organize, index."""

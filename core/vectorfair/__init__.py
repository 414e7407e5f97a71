"""vectorfair: a plugin platform of vector-search demos on Milvus."""

from .demo import (
    Demo, DemoOptions, Entry, Field, Hit, ItemError, Media, QueryError, Upload, lazy_model, static_folder,
)
from .hookspecs import hookimpl
from .progress import report_progress

__all__ = [
    "Demo", "DemoOptions", "Entry", "Field", "Hit", "ItemError", "Media", "QueryError", "Upload", "hookimpl",
    "report_progress", "lazy_model", "static_folder",
]
__version__ = "0.1.0"

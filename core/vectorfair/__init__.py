"""vectorfair: a plugin platform of vector-search demos on Milvus."""

from .demo import Demo, DemoOptions, Entry, Field, Hit, ItemError, Media, QueryError, Upload
from .hookspecs import hookimpl

__all__ = [
    "Demo", "DemoOptions", "Entry", "Field", "Hit", "ItemError", "Media", "QueryError", "Upload", "hookimpl",
]
__version__ = "0.1.0"

"""vectorfair: a plugin platform of vector-search demos on Milvus."""

from importlib.metadata import PackageNotFoundError, version

from .demo import (
    Demo,
    DemoFilter,
    DemoOptions,
    Entry,
    Hit,
    ItemError,
    Media,
    QueryError,
    SampleUnavailable,
    Upload,
    lazy_model,
    static_folder,
)
from .expr import all_of, in_list, quote
from .hookspecs import hookimpl
from .progress import report_progress
from .schema import ScalarField, VectorField

__all__ = [
    "Demo",
    "DemoFilter",
    "DemoOptions",
    "Entry",
    "Hit",
    "ItemError",
    "Media",
    "QueryError",
    "SampleUnavailable",
    "ScalarField",
    "Upload",
    "VectorField",
    "all_of",
    "hookimpl",
    "in_list",
    "lazy_model",
    "quote",
    "report_progress",
    "static_folder",
]
try:
    __version__ = version("vectorfair")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

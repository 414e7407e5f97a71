"""Every hook the core calls. Each has a test (tests/test_hooks.py checks that)
and a heading with its exact signature in docs/plugin_hooks.md.

Implementations may take any subset of the arguments, so adding an argument
here never breaks an existing plugin (a pluggy guarantee).
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("vectorfair")
hookimpl = HookimplMarker("vectorfair")


@hookspec
def register_demos(settings):
    """Return a list of `vectorfair.Demo` subclasses this plugin offers."""


@hookspec
def register_routes(app, demos):
    """Return a list of FastAPI `APIRouter`s to mount next to the shared routes."""


@hookspec
def startup(app, demos):
    """Called once the app has started; may return an awaitable, which is awaited."""


@hookspec
def extra_static(demos):
    """Return (name, directory) pairs served at /static/plugins/<name>/ for a plugin's own assets."""

"""Finding plugins (entry point group `vectorfair`) and the demos they offer.

A plugin that fails to import, or offers something that is not a valid demo,
is recorded as broken and reported; every other plugin still loads.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import sys
import traceback
from typing import Any

import pluggy

from . import contract, hookspecs
from .demo import Demo
from .settings import ConfigError, Settings

log = logging.getLogger("vectorfair.plugins")
ENTRY_POINT_GROUP = "vectorfair"
HOOK_NAMES = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "vectorfair_spec"))


@dataclasses.dataclass
class PluginInfo:
    name: str
    module: str
    version: str | None
    demos: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    # Demos a broken plugin offered, so "not installed" is not said of them.
    offered: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass
class Discovery:
    manager: pluggy.PluginManager
    plugins: list[PluginInfo]
    # Every valid demo class found, enabled or not, by name.
    demo_classes: dict[str, type[Demo]]


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("vectorfair")
    manager.add_hookspecs(hookspecs)
    if os.environ.get("VECTORFAIR_TRACE_HOOKS"):
        manager.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
        manager.enable_tracing()
    return manager


def discover(settings: Settings, extra_plugins: list[Any] = ()) -> Discovery:
    """Load entry-point plugins (restricted by `settings.plugins`) plus `extra_plugins`."""
    manager = new_manager()
    infos: list[PluginInfo] = []
    allow = settings.plugin_allowlist
    for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if allow is not None and entry_point.name not in allow:
            continue
        dist = getattr(entry_point, "dist", None)
        info = PluginInfo(entry_point.name, entry_point.value, dist.version if dist else None)
        infos.append(info)
        try:
            module = entry_point.load()
            manager.register(module, name=entry_point.name)
        except Exception as exc:  # any import-time failure of third-party code
            info.error = f"failed to load: {type(exc).__name__}: {exc}"
            log.error("plugin %s %s\n%s", entry_point.name, info.error, traceback.format_exc())
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", type(plugin).__name__)
        manager.register(plugin, name=name)
        infos.append(PluginInfo(name, name, None))

    by_name = {info.name: info for info in infos}
    _unregister_misspelled_hooks(manager, by_name)
    demo_classes: dict[str, type[Demo]] = {}
    for plugin_name, plugin in list(manager.list_name_plugin()):
        info = by_name.get(plugin_name)
        if info is None or not info.ok:
            continue
        impl = getattr(plugin, "register_demos", None)
        if impl is None:
            continue
        try:
            offered = manager.subset_hook_caller(
                "register_demos", remove_plugins=[p for p in manager.get_plugins() if p is not plugin]
            )(settings=settings)
            offered = [cls for result in offered for cls in (result or [])]
            problems = _contract_problems(offered, demo_classes)
        except Exception as exc:
            problems = [f"register_demos raised {type(exc).__name__}: {exc}"]
            offered = []
        if problems:
            info.offered = [getattr(cls, "name", "") for cls in offered if isinstance(getattr(cls, "name", None), str)]
            info.error = "broken contract: " + "; ".join(problems)
            log.error("plugin %s %s", plugin_name, info.error)
            manager.unregister(plugin)
            continue
        for cls in offered:
            demo_classes[cls.name] = cls
            info.demos.append(cls.name)
    return Discovery(manager, infos, demo_classes)


def _unregister_misspelled_hooks(manager: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    """A plugin with a @hookimpl that no hook of the core has (a misspelled
    name) is broken: pluggy would otherwise never call it, silently."""
    while True:
        try:
            manager.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = manager.get_name(exc.plugin)
            message = f"{exc} (vectorfair's hooks: {', '.join(HOOK_NAMES)}); check the spelling"
            if name in infos:
                infos[name].error = message
            log.error("plugin %s %s", name, message)
            manager.unregister(exc.plugin)


def _contract_problems(offered: list[Any], known: dict[str, type[Demo]]) -> list[str]:
    problems = []
    for cls in offered:
        if not (isinstance(cls, type) and issubclass(cls, Demo)):
            problems.append(f"{cls!r} is not a vectorfair.Demo subclass")
            continue
        problems += [f"{cls.__name__}: {p}" for p in contract.problems(cls)]
        if getattr(cls, "name", None) in known:
            problems.append(f"demo name {cls.name!r} is already taken by {known[cls.name].__module__}")
    return problems


def configure_demos(settings: Settings, discovery: Discovery) -> dict[str, Demo]:
    """Instantiate the enabled demos with their validated options.

    Raises ConfigError naming the installed demos or the bad key.
    """
    installed = discovery.demo_classes
    unknown = sorted(set(settings.demos) - set(installed))
    if unknown:
        broken = [p.name for p in discovery.plugins if not p.ok]
        sections = [name for name in unknown if _enabled(settings.demos[name], True)]
        for plugin in discovery.plugins:
            named = [name for name in sections if name in plugin.offered]
            if named:
                raise ConfigError(
                    f"demo {', '.join(named)} is installed (plugin {plugin.name}) but broken: "
                    f"{plugin.error}. Fix the plugin, or set enabled = false in its section."
                )
        if sections:
            raise ConfigError(
                f"the config enables demo(s) {', '.join(sections)} which are not installed; "
                f"installed demos: {', '.join(sorted(installed)) or 'none'}"
                + (f"; broken plugins: {', '.join(broken)} (run `vectorfair plugins`)" if broken else "")
                + ". Install the plugin package or set enabled = false in that section."
            )
    demos: dict[str, Demo] = {}
    for name, cls in sorted(installed.items()):
        section = settings.demos.get(name)
        if section is None and not settings.enable_unlisted_demos:
            continue
        try:
            options = cls.Options.model_validate(section or {})
        except Exception as exc:
            details = "; ".join(
                f"[demos.{name}] {'.'.join(str(p) for p in e['loc']) or '(section)'}: {e['msg']}"
                for e in getattr(exc, "errors", lambda: [])()
            ) or str(exc)
            raise ConfigError(f"bad option for demo {name!r}: {details}") from exc
        if not options.enabled:
            continue
        demo = cls(options)
        problems = contract.problems(cls, demo)  # what depends on the options, such as a dim
        if problems:
            raise ConfigError(f"demo {name!r} cannot start with these options: {'; '.join(problems)}")
        demos[name] = demo
    return demos


def _enabled(section: dict[str, Any], default: bool) -> bool:
    value = section.get("enabled", default)
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)

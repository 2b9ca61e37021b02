"""Finding plugins: entry points (once, on first use, honouring the allow-list), the plugin
manager that holds them, the provider specs they announce, and the listing
``report-gateway plugins`` prints."""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Collection, Sequence

import attrs
import pluggy

from . import __version__, hookspecs
from .config import LOAD_PLUGINS_ENV
from .errors import ConfigurationError, UnknownProviderError
from .hookspecs import PROJECT
from .provider import ProviderSpec

__all__ = ["DEFAULT_PLUGIN_NAME", "LOAD_PLUGINS_ENV", "PluginInfo", "PluginRegistry"]

DEFAULT_PLUGIN_NAME = "report_gateway.defaults"


@attrs.frozen
class PluginInfo:
    """One registered plugin, as ``report-gateway plugins`` lists it.

    ``version`` and ``distribution`` come from the installed distribution's metadata for
    entry-point plugins; they are None for objects passed with ``Gateway(plugins=[...])``.
    """

    name: str
    version: str | None
    hooks: tuple[str, ...]
    distribution: str | None = None


class PluginRegistry:
    """The plugin manager, loaded once (thread-safe), and the providers its plugins add.

    ``allowed``: the entry-point names to load (the ``load_plugins`` option); None: all.
    ``skip_broken``: an entry point that fails to import is left out and recorded in
    ``broken`` (name -> why) instead of raising; for a listing that must show the plugins
    that work (``report-gateway demo``) rather than stop at the first that does not.
    """

    def __init__(
        self,
        *,
        defaults: object,
        plugins: Sequence[object] = (),
        load_entrypoints: bool = True,
        allowed: Collection[str] | None = None,
        skip_broken: bool = False,
    ) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.pm.register(defaults, name=DEFAULT_PLUGIN_NAME)
        self._extra = list(plugins)
        self._load_entrypoints = load_entrypoints
        self._allowed = None if allowed is None else frozenset(allowed)
        self._skip_broken = skip_broken
        #: Entry points that failed to import (``skip_broken``): name -> the error.
        self.broken: dict[str, str] = {}
        #: Entry points loaded and registered, in the order found.
        self.entry_points: list[str] = []
        self._lock = threading.Lock()
        self._loading_in: int | None = None  # the thread loading the plugins, while it does
        self._loaded = False
        self._specs: dict[str, ProviderSpec] = {}
        self._distributions: dict[str, tuple[str, str]] = {}

    @property
    def loaded(self) -> bool:
        return self._loaded

    def specs(self) -> dict[str, ProviderSpec]:
        """Every announced provider by name (loading the plugins the first time)."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._loading_in = threading.get_ident()
                    try:
                        self._load()
                    finally:
                        self._loading_in = None
        return self._specs

    @property
    def loading_here(self) -> bool:
        """Whether this thread is inside the plugins' loading (a hook, a warning it raised)."""
        return self._loading_in == threading.get_ident()

    def spec(self, provider: str) -> ProviderSpec:
        specs = self.specs()
        try:
            return specs[provider]
        except KeyError:
            raise UnknownProviderError(provider, specs) from None

    def _load(self) -> None:
        """Register extra plugins and entry points once, then collect the provider specs."""
        for plugin in self._extra:
            if not self.pm.is_registered(plugin):
                self.pm.register(plugin)
        if self._load_entrypoints:
            self._load_entry_points()
        self.pm.check_pending()
        specs: dict[str, ProviderSpec] = {}
        for answer in reversed(self.pm.hook.report_gateway_providers()):
            for spec in answer or ():
                if spec.name in specs:
                    raise ConfigurationError(f"two plugins register the provider {spec.name!r}")
                specs[spec.name] = spec
        self._specs = specs
        self._loaded = True

    def _load_entry_points(self) -> None:
        """Import and register each ``report_gateway`` entry point (honouring the allow-list).

        A plugin that fails to import is a ConfigurationError naming it, rather than a bare
        ImportError from deep inside the plugin manager.
        """
        wanted = self._allowed
        installed = importlib.metadata.entry_points(group=PROJECT)
        if wanted and not wanted & set(installed.names):
            # A typo here would otherwise leave a gateway with no providers, and every
            # later error ("unknown provider") would point away from the cause.
            names = ", ".join(sorted(installed.names)) or "none"
            raise ConfigurationError(
                f"{LOAD_PLUGINS_ENV} (or the load_plugins option) names "
                f"{', '.join(sorted(wanted))}, but no such plugin is installed; "
                f"installed plugins: {names}"
            )
        for entry_point in installed:
            name = entry_point.name
            if wanted is not None and name not in wanted:
                continue
            if self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:
                if self._skip_broken:
                    self.broken[name] = f"{type(exc).__name__}: {exc}"
                    continue
                dist = entry_point.dist.name if entry_point.dist else "unknown distribution"
                raise ConfigurationError(
                    f"plugin {name!r} ({dist}) failed to load: {type(exc).__name__}: {exc}; "
                    f"uninstall it or set {LOAD_PLUGINS_ENV} (or the load_plugins option) "
                    "to the plugins to load"
                ) from exc
            self.pm.register(plugin, name=name)
            self.entry_points.append(name)
            if entry_point.dist is not None:
                self._distributions[name] = (entry_point.dist.name, entry_point.dist.version)

    def hooks_of(self, plugin: object) -> tuple[str, ...]:
        return tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))

    def implementing(self, hook: str) -> list[str]:
        """Names of the registered plugins (not the built-in defaults) implementing ``hook``."""
        return [
            name
            for name, plugin in self.pm.list_name_plugin()
            if name != DEFAULT_PLUGIN_NAME and plugin is not None and hook in self.hooks_of(plugin)
        ]

    def listing(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution version and the hooks it implements."""
        self.specs()
        listing: list[PluginInfo] = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = self.hooks_of(plugin)
            if name in self._distributions:
                dist_name, version = self._distributions[name]
                info = PluginInfo(name, version, hooks, dist_name)
            elif name == DEFAULT_PLUGIN_NAME:
                info = PluginInfo(name, __version__, hooks, "report-gateway")
            else:
                info = PluginInfo(name, None, hooks)
            listing.append(info)
        return sorted(listing, key=lambda info: info.name)

"""One API and command line to run provider reports and get their files and rows.

``from report_gateway import Gateway, RunStatus, Scope, GatewayError``. Names are imported on
first access (module ``__getattr__``) so ``import report_gateway`` stays cheap for the
command line and for plugins that only need ``hookimpl``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .aio import AsyncGateway
    from .config import Credentials, ProviderSettings
    from .download import ZipLimits
    from .errors import (
        ConfigurationError,
        CredentialsError,
        DownloadError,
        GatewayError,
        IntegrityError,
        NotSupportedError,
        ParameterError,
        ProviderError,
        RunCanceledError,
        RunFailedError,
        RunLimitError,
        RunMayExistError,
        RunNotFoundError,
        ScopeError,
        UnknownProviderError,
        UnknownReportError,
        WaitTimeoutError,
    )
    from .gateway import Gateway
    from .hookspecs import hookimpl
    from .models import (
        ParameterSpec,
        ReportRun,
        ReportTemplate,
        ResultFile,
        RunStatus,
        Scope,
        StartProgress,
    )
    from .plugins import PluginInfo
    from .provider import BaseDriver, ProviderContext, ProviderDriver, ProviderSpec

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Gateway": "gateway",
    "AsyncGateway": "aio",
    "PluginInfo": "plugins",
    "hookimpl": "hookspecs",
    "RunStatus": "models",
    "Scope": "models",
    "ReportRun": "models",
    "ReportTemplate": "models",
    "ResultFile": "models",
    "ParameterSpec": "models",
    "StartProgress": "models",
    "ProviderSpec": "provider",
    "ProviderContext": "provider",
    "ProviderDriver": "provider",
    "BaseDriver": "provider",
    "Credentials": "config",
    "ProviderSettings": "config",
    "GatewayError": "errors",
    "ConfigurationError": "errors",
    "CredentialsError": "errors",
    "UnknownProviderError": "errors",
    "UnknownReportError": "errors",
    "ParameterError": "errors",
    "ScopeError": "errors",
    "ProviderError": "errors",
    "RunFailedError": "errors",
    "RunCanceledError": "errors",
    "RunNotFoundError": "errors",
    "NotSupportedError": "errors",
    "WaitTimeoutError": "errors",
    "DownloadError": "errors",
    "IntegrityError": "errors",
    "RunMayExistError": "errors",
    "RunLimitError": "errors",
    "ZipLimits": "download",
}

__all__ = [
    "AsyncGateway",
    "BaseDriver",
    "ConfigurationError",
    "Credentials",
    "CredentialsError",
    "DownloadError",
    "Gateway",
    "GatewayError",
    "IntegrityError",
    "NotSupportedError",
    "ParameterError",
    "ParameterSpec",
    "PluginInfo",
    "ProviderContext",
    "ProviderDriver",
    "ProviderError",
    "ProviderSettings",
    "ProviderSpec",
    "ReportRun",
    "ReportTemplate",
    "ResultFile",
    "RunCanceledError",
    "RunFailedError",
    "RunLimitError",
    "RunMayExistError",
    "RunNotFoundError",
    "RunStatus",
    "Scope",
    "ScopeError",
    "StartProgress",
    "UnknownProviderError",
    "UnknownReportError",
    "WaitTimeoutError",
    "ZipLimits",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'report_gateway' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

"""Exit codes of ``report-gateway`` and the mapping from gateway errors onto them.

Scripts branch on these numbers (retry on 6, page someone on 3, resume on 5), so they are
part of the public contract: the help epilog and README show this same table.
"""

from __future__ import annotations

from reporting_runtime.errors import ReportingError

__all__ = [
    "CONFIG",
    "DOWNLOAD",
    "EXIT_CODES_HELP",
    "INTERNAL",
    "INTERRUPTED",
    "OK",
    "PROVIDER",
    "RUN_FAILED",
    "TIMEOUT",
    "USAGE",
    "UsageError",
    "exit_code_for",
]

OK = 0
INTERNAL = 1
USAGE = 2
CONFIG = 3
RUN_FAILED = 4
TIMEOUT = 5
PROVIDER = 6
DOWNLOAD = 7
INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    unexpected internal error (rerun with --debug and report the traceback)
  2    usage error: bad arguments or -p parameters, unknown provider, report or run id,
       invalid scope, or an operation the provider does not support
  3    configuration or authentication error: missing credentials, bad config file or
       profile, a plugin that fails to load, HTTP 401/403 from the provider
  4    the run failed or was canceled
  5    timed out waiting; the run goes on at the provider: resume with
       `report-gateway wait PROVIDER RUN_ID`
  6    provider, API or network error (after retries)
  7    download or integrity error (result not fetched, written or verified)
  130  interrupted (Ctrl-C); the run id is printed so the run can be resumed"""


class UsageError(Exception):
    """A command line the gateway cannot act on (bad ``-p`` syntax, say): exit code 2."""


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error that ended a command.

    Specific classes are tested before their bases (an unknown provider is a configuration
    error in the library, but on the command line it is a mistyped argument).
    """
    from report_gateway import errors

    if isinstance(exc, UsageError):
        return USAGE
    if isinstance(
        exc,
        errors.UnknownProviderError
        | errors.UnknownReportError
        | errors.ParameterError
        | errors.ScopeError
        | errors.RunNotFoundError
        | errors.NotSupportedError,
    ):
        return USAGE
    if isinstance(exc, errors.ConfigurationError):
        return CONFIG
    if isinstance(exc, errors.RunFailedError | errors.RunCanceledError):
        return RUN_FAILED
    if isinstance(exc, errors.WaitTimeoutError):
        return TIMEOUT
    if isinstance(exc, errors.DownloadError):
        return DOWNLOAD
    if isinstance(exc, errors.ProviderError):
        return CONFIG if exc.status in (401, 403) else PROVIDER
    if isinstance(exc, errors.GatewayError):  # RunMayExistError among others
        return PROVIDER
    if isinstance(exc, ReportingError):
        return CONFIG if getattr(exc, "status", None) in (401, 403) else PROVIDER
    return INTERNAL

"""The argument parser: every subcommand, option and help text, with stdlib imports only.

Building it must stay cheap (``report-gateway --help`` imports nothing heavy): the commands
themselves are looked up by name and imported only once parsing succeeded.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from .exits import EXIT_CODES_HELP
from .params import PARAMETERS_HELP

__all__ = ["PROG", "build_parser"]

PROG = "report-gateway"

_DESCRIPTION = """\
Run provider reports (Stripe Reporting v1 "stripe", Stripe Reports v2 "stripe-v2", Zuora
"zuora", and any provider a plugin adds) and fetch their result files.

Start with `report-gateway demo`: it runs one report per provider against the embedded
sandbox, with no account and no network."""

_SETTINGS_HELP = """\
settings and credentials:
  Each provider reads its settings from --set/--base-url, then the selected profile of the
  config file (--config, $REPORT_GATEWAY_CONFIG, else report-gateway/config.toml in the user
  config folder: ~/.config on Linux, ~/Library/Application Support on macOS, %APPDATA%;
  --profile or $REPORT_GATEWAY_PROFILE, else "default"), then environment variables:
  STRIPE_API_KEY; ZUORA_API_ACCESS_KEY_ID, ZUORA_API_SECRET_ACCESS_KEY, ZUORA_DATA_CENTER,
  ZUORA_ENTITY_ID, ZUORA_ENTITY_NAME. Secrets are never printed.
  Behind a TLS-intercepting proxy, --ca-bundle PATH (or $REPORT_GATEWAY_CA_BUNDLE) names
  the PEM file of CA certificates to trust instead of the system store; certificates are
  always verified.

examples:
  report-gateway demo
  report-gateway templates stripe
  report-gateway run stripe balance.summary.1 -p interval_start=2025-01-01 \\
      -p interval_end=2025-02-01 -o out.csv
  report-gateway search zuora "Customer report"
  report-gateway --json status stripe frr_123"""


OUTPUT_HELP = """\
the result file (-o):
  -o out.csv     that file; an existing file is replaced (the output says so). A ZIP
                 result (Stripe v2 compress_file) saved without --unzip is named .zip
  -o results/    that folder (it must exist), under the provider's file name
  -o -           stdout
  The folder is checked (exists, writable, not full) before the run is created. If the
  download fails after the run succeeded (exit 7), or on a timeout (5) or Ctrl-C (130),
  the error prints the command that finishes the job: `report-gateway download ... -o ...`
  or `report-gateway wait ... -o ...`, with the run id."""

GLOBAL_OPTIONS_HELP = """\
global options (before or after the command; details in `report-gateway --help`):
  --json  --debug  --profile NAME  --config FILE  --ca-bundle PATH  --base-url URL
  --set KEY=VALUE  --account ID  --context ID  --entity-id ID  --entity-name NAME"""

SUPPORT_HELP = """\
what each provider supports:
  command     stripe  stripe-v2                    zuora
  templates   yes     the ids in --set reports=... no: `search zuora "NAME"`
  search      yes     the ids in --set reports=... yes
  runs        yes     no: keep the run ids         no: `last zuora REPORT`
  last        yes     no                           yes
  cancel      no      no                           yes
  run, status, wait, download: every provider"""

_EXAMPLES = {
    "providers": ["report-gateway providers"],
    "plugins": ["report-gateway plugins"],
    "templates": ["report-gateway templates stripe", "report-gateway --json templates stripe"],
    "template": ["report-gateway template stripe balance.summary.1"],
    "search": ['report-gateway search zuora "Customer report"'],
    "run": [
        "report-gateway run stripe balance.summary.1 -p interval_start=2025-01-01 \\\n"
        "      -p interval_end=2025-02-01 -o out.csv",
        'report-gateway run zuora "Customer report" -p viewType=Summary -o results/',
        "report-gateway run stripe-v2 report_balance_summary --contexts contexts.txt \\\n"
        "      -p interval_start=2025-01-01 -p interval_end=2025-02-01 -o out/ --combine all.csv",
    ],
    "status": ["report-gateway status stripe frr_123"],
    "wait": ["report-gateway wait stripe frr_123 -o out.csv"],
    "download": ["report-gateway download stripe frr_123 -o out.csv"],
    "cancel": ["report-gateway cancel zuora 2c92c0f9..."],
    "last": ["report-gateway last stripe balance.summary.1"],
    "runs": ["report-gateway runs stripe --limit 5"],
    "demo": ["report-gateway demo --rows 100"],
    "listen": ["report-gateway listen --port 8080"],
    "journal": ["report-gateway journal --since 2h", "report-gateway journal --unfinished"],
    "resume": [
        "report-gateway resume",
        "report-gateway resume --provider stripe --max-concurrency 4",
    ],
}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the hand-wrapped description and epilog; widen the option column a little."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line in the same form as every other error, with where to look.

    argparse's default prints the whole usage block first; with this many options that
    buries the one line that matters.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


def _common_options(suppress: bool) -> _Parser:
    """Options accepted before or after the subcommand (``report-gateway --json runs x`` and
    ``report-gateway runs x --json``).

    The copy attached to subcommands uses SUPPRESS defaults so that an option given before
    the subcommand is not reset by the subcommand's parser.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    def shown(text: str) -> str:
        # A subcommand's help lists these compactly in GLOBAL_OPTIONS_HELP, after its own.
        return argparse.SUPPRESS if suppress else text

    common = _Parser(add_help=False)
    out = common.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help=shown('print machine-readable JSON on stdout (errors too, as {"error": ...})'),
    )
    out.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help=shown("show tracebacks and debug logs (secrets stay redacted)"),
    )
    conf = common.add_argument_group("configuration")
    conf.add_argument(
        "--profile", metavar="NAME", default=default(None), help=shown("config profile")
    )
    conf.add_argument("--config", metavar="FILE", default=default(None), help=shown("config file"))
    conf.add_argument(
        "--ca-bundle",
        metavar="PATH",
        default=default(None),
        help=shown(
            "PEM file of CA certificates to verify servers with, for every provider "
            "(a corporate proxy's CA); default $REPORT_GATEWAY_CA_BUNDLE, else the system store"
        ),
    )
    conf.add_argument(
        "--base-url",
        metavar="URL",
        default=default(None),
        help=shown(
            "the provider's API endpoint (e.g. a sandbox: http://127.0.0.1:12111); for "
            "Stripe v1 also where result files are fetched, unless --set files_base_url=URL"
        ),
    )
    conf.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        dest="settings",
        default=default(None),
        help=shown(
            "a provider setting (files_base_url, stripe_version, data_center...); repeatable"
        ),
    )
    scope = common.add_argument_group("scope (whose data)")
    scope.add_argument(
        "--account",
        metavar="ID",
        default=default(None),
        help=shown("Stripe v1 connected account (Stripe-Account)"),
    )
    scope.add_argument(
        "--context",
        metavar="ID",
        default=default(None),
        help=shown("Stripe v2 context (Stripe-Context)"),
    )
    scope.add_argument(
        "--entity-id", metavar="ID", default=default(None), help=shown("Zuora entity id")
    )
    scope.add_argument(
        "--entity-name", metavar="NAME", default=default(None), help=shown("Zuora entity name")
    )
    return common


def positive_seconds(text: str) -> float:
    """A duration in seconds, finite and above zero (a usage error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def positive_count(text: str) -> int:
    """A whole number of at least 1 (a usage error otherwise: 0 workers would do nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``args.command`` names the subcommand that was chosen."""
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=f"{_SETTINGS_HELP}\n\n{SUPPORT_HELP}\n\n{OUTPUT_HELP}\n\n{PARAMETERS_HELP}\n\n"
        f"{EXIT_CODES_HELP}",
        formatter_class=_Formatter,
        parents=[_common_options(suppress=False)],
    )
    from report_gateway import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = _common_options(suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        """A subcommand: its own options first, then its example(s), then the global
        options in two lines (as ``gh`` shows inherited flags)."""
        examples = "\n".join(f"  {line}" for line in _EXAMPLES[name])
        sections = [f"example{'s' if len(_EXAMPLES[name]) > 1 else ''}:\n{examples}"]
        if epilog:
            sections.append(epilog)
        sections.append(GLOBAL_OPTIONS_HELP)
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog="\n\n".join(sections),
            parents=[common],
            formatter_class=_Formatter,
        )

    def provider(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "provider", metavar="PROVIDER", help="stripe, stripe-v2, zuora, ... (see `providers`)"
        )

    def run_id(sub: argparse.ArgumentParser) -> None:
        provider(sub)
        sub.add_argument(
            "run_id", metavar="RUN_ID", help="the id `run` printed (frr_..., reprun_..., ...)"
        )

    def timeout(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--timeout",
            metavar="S",
            type=positive_seconds,
            default=3600.0,
            help="seconds to wait before giving up (exit 5; the run goes on); default 3600",
        )

    def download_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--unzip", action="store_true", help="unpack a ZIP result (Stripe v2) to its CSV"
        )
        sub.add_argument(
            "--raw",
            action="store_true",
            help="keep the provider's bytes (no UTF-16 TSV to UTF-8 CSV conversion for Zuora)",
        )
        sub.add_argument(
            "--format",
            choices=("csv", "parquet", "jsonl"),
            default="csv",
            help="csv: the provider's file (default); parquet: typed columns where the "
            'provider gives types (needs pip install "report-gateway[arrow]"); jsonl: one '
            "JSON object per row",
        )
        sub.add_argument(
            "--untyped",
            action="store_true",
            help="with --format parquet: every column as text, not typed by the provider's "
            "schema (for a report whose cells do not all fit their column's type)",
        )

    add("providers", "list the providers the installed plugins add")
    add("plugins", "list the installed plugins: name, version, hooks")

    sub = add("templates", "list the reports a provider offers", SUPPORT_HELP)
    provider(sub)

    sub = add("template", "show one report and the parameters it accepts")
    provider(sub)
    sub.add_argument(
        "report",
        metavar="REPORT",
        help="report id (e.g. balance.summary.1), or a Zuora report's exact name",
    )

    sub = add("search", "find reports by name")
    provider(sub)
    sub.add_argument(
        "query", metavar="QUERY", help="words of the report's name (quote several words)"
    )

    sub = add(
        "run",
        "start a run, wait for it with progress, and download its result (-o)",
        epilog=f"{OUTPUT_HELP}\n\n{PARAMETERS_HELP}\n\n{EXIT_CODES_HELP}",
    )
    provider(sub)
    sub.add_argument(
        "report",
        metavar="REPORT",
        help="report id (e.g. balance.summary.1), or a Zuora report's exact name",
    )
    sub.add_argument(
        "-p",
        "--param",
        metavar="NAME=VALUE",
        action="append",
        dest="params",
        default=[],
        help="a report parameter; repeatable (see below for dates and lists)",
    )
    sub.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the result here (a folder: the provider's file name; '-': stdout)",
    )
    sub.add_argument("--no-wait", action="store_true", help="print the new run and return at once")
    timeout(sub)
    download_options(sub)
    fan = sub.add_argument_group(
        "many scopes (one run each; -o names a folder, one file per scope)"
    ).add_mutually_exclusive_group()
    for flag, whose in (
        ("--accounts", "Stripe v1 connected accounts"),
        ("--contexts", "Stripe v2 contexts"),
        ("--entities", "Zuora entity ids"),
    ):
        fan.add_argument(flag, metavar="FILE", help=f"{whose}, one per line ('#' comments)")
    sub.add_argument(
        "--combine", metavar="NAME", help="also write every row to NAME in -o, scope column first"
    )
    sub.add_argument(
        "--max-concurrency",
        metavar="N",
        type=positive_count,
        help="runs active at once (default 8)",
    )
    sub.add_argument(
        "--no-reuse",
        action="store_true",
        help="start a new run (for every scope), not taking up the same job's unfinished run"
        " or downloaded file from the journal",
    )

    sub = add("status", "show a run's current state")
    run_id(sub)

    sub = add("wait", "wait for a run to finish (resume after a timeout or Ctrl-C)")
    run_id(sub)
    sub.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="then download the result here, as `run -o` does (a folder, FILE or '-')",
    )
    timeout(sub)
    download_options(sub)

    sub = add("download", "download a succeeded run's result", OUTPUT_HELP)
    run_id(sub)
    sub.add_argument(
        "-o", "--output", metavar="FILE", required=True, help="target file, folder, or '-'"
    )
    download_options(sub)

    sub = add("cancel", "ask the provider to stop a run", SUPPORT_HELP)
    run_id(sub)

    sub = add(
        "last",
        "show the newest succeeded run of a report (reuse it without a new run)",
        SUPPORT_HELP,
    )
    provider(sub)
    sub.add_argument("report", metavar="REPORT", help="report id, or a Zuora report's exact name")

    sub = add("runs", "list recent runs, newest first", SUPPORT_HELP)
    provider(sub)
    sub.add_argument(
        "--limit", metavar="N", type=int, default=20, help="how many runs (default 20)"
    )

    sub = add("journal", "list the runs in the run journal (every start is written there)")
    sub.add_argument(
        "--since", metavar="WHEN", help="updated since an ISO date/datetime or a duration (2h, 7d)"
    )
    sub.add_argument("--unfinished", action="store_true", help="only runs with work left")
    sub.add_argument(
        "--abandon",
        metavar="ID",
        nargs="+",
        help="drop these unfinished entries (ids as `journal` shows them): resume leaves them",
    )

    sub = add("resume", "finish every unfinished wait and download in the run journal")
    timeout(sub)
    sub.add_argument(
        "--provider",
        metavar="NAME",
        dest="resume_provider",
        help="only this provider's entries (what --base-url/--set then apply to)",
    )
    sub.add_argument(
        "--max-concurrency", metavar="N", type=int, help="runs active at once (default 8)"
    )

    sub = add(
        "demo",
        "run one report per provider end to end against the embedded sandbox (no account)",
    )
    sub.add_argument(
        "--output-dir",
        metavar="DIR",
        default="demo-output",
        help="folder for the CSV files (created; default ./demo-output)",
    )
    sub.add_argument(
        "--rows", metavar="N", type=int, default=1000, help="rows per result (default 1000)"
    )
    sub.add_argument(
        "--run-seconds",
        metavar="S",
        type=float,
        default=1.0,
        help="how long each sandbox run takes (default 1)",
    )
    sub = add(
        "listen",
        "receive Stripe webhooks (POST /webhooks/stripe): verify them and write the runs "
        "they announce to the run journal, where a wait in any process on that journal "
        "reads them between polls",
    )
    sub.add_argument(
        "--provider",
        metavar="NAME",
        action="append",
        dest="webhook_providers",
        default=[],
        help="provider that --base-url/--set apply to; repeatable (default: stripe and "
        "stripe-v2, the API a v2 thin event's run is fetched from)",
    )
    sub.add_argument(
        "--port", metavar="N", type=int, default=0, help="port to listen on (default: a free one)"
    )
    sub.add_argument(
        "--host",
        metavar="ADDR",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; put a TLS proxy in front for Stripe)",
    )
    return parser

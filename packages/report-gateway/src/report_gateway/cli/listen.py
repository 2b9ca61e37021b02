"""``report-gateway listen``: serve ``report_gateway.webhooks`` until Ctrl-C.

Bound to loopback by default: Stripe reaches it through a tunnel or a TLS proxy (or the
Stripe CLI's ``stripe listen --forward-to``), never by exposing this plain-HTTP server.

Every run it learns is written to the run journal (the gateway's: ``journal`` setting or
``$REPORT_GATEWAY_JOURNAL``), so a ``wait`` in another process on the same journal ends
within a second or so of the event. The journal is opened before listening, so a journal
that cannot be used is said at once, not at the first event.
"""

from __future__ import annotations

import errno
import json
import logging

from . import exits
from .commands import Session
from .exits import UsageError

__all__ = ["run_listen"]

_BUSY = (errno.EADDRINUSE,)


def _check_providers(s: Session) -> None:
    """``--provider`` names providers whose webhooks are served, or whose API those
    webhooks' runs are fetched from (stripe-v2 for stripe's thin events): any other is a
    mistake (zuora sends no webhooks), refused rather than ignored."""
    wanted: list[str] = s.args.webhook_providers or []
    if not wanted:
        return
    gw = s.gateway
    hooked = [name for name in gw.providers() if gw.spec(name).webhook is not None]
    families = {name.split("-")[0] for name in hooked}
    served = [name for name in gw.providers() if name.split("-")[0] in families]
    wrong = [name for name in wanted if name not in served]
    if wrong:
        raise UsageError(
            f"--provider {', '.join(wrong)}: no webhooks for it; listen takes --provider"
            f" {', '.join(served) or '(none installed)'} (providers with webhooks:"
            f" {', '.join(hooked) or 'none'})"
        )


def run_listen(s: Session) -> int:
    from report_gateway.webhooks import WebhookApp, make_server

    _check_providers(s)
    app = WebhookApp(s.gateway)
    journal = s.gateway.journal
    try:
        server = make_server(app, s.args.host, s.args.port)
    except OSError as exc:  # busy port, an address not of this machine, a port < 1024
        raise UsageError(
            f"cannot listen on {s.args.host}:{s.args.port}: {exc.strerror or exc}"
            + (" (another process has it: choose another --port)" if exc.errno in _BUSY else "")
        ) from None
    host, port = str(server.server_address[0]), int(server.server_address[1])
    url = f"http://{host}:{port}{app.path}"
    if s.out.as_json:
        where = None if journal is None else str(journal.path)
        s.stdout.write(json.dumps({"listening": url, "journal": where}) + "\n")
    else:
        s.stdout.write(f"listening on {url} (Ctrl-C stops)\n")
        if journal is not None:
            s.stdout.write(f"runs learned are written to the run journal {journal.path}\n")
    s.stdout.flush()
    events = logging.getLogger("report_gateway.webhooks")
    handler: logging.Handler | None = None
    if not s.args.debug:  # --debug already sends every logger to stderr
        handler = logging.StreamHandler(s.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        events.addHandler(handler)
        events.setLevel(logging.INFO)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        s.stderr.write("stopped\n")
    finally:
        server.server_close()
        if handler is not None:
            events.removeHandler(handler)
    return exits.OK

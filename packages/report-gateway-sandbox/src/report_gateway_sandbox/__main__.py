"""`python -m report_gateway_sandbox --port N`: serve the sandbox in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys

from report_gateway_sandbox.app import SandboxApp
from report_gateway_sandbox.config import SandboxConfig
from report_gateway_sandbox.credentials import (
    STRIPE_TEST_KEY,
    STRIPE_WEBHOOK_SECRET,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_SECRET_ACCESS_KEY,
)
from report_gateway_sandbox.server import make_server
from report_gateway_sandbox.zuora import PREFIX, REST_PREFIX


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m report_gateway_sandbox",
        description="Serve the Stripe v1/v2 and Zuora reporting API emulator on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--run-seconds", type=float, default=1.0, help="time a run takes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--result-rows", type=int, default=1000)
    parser.add_argument("--result-bytes", type=int, default=None, help="overrides rows")
    parser.add_argument("--url-ttl", type=float, default=300.0, help="v2 download URL life")
    parser.add_argument("--v2-concurrency-limit", type=int, default=100)
    parser.add_argument("--zuora-access-key-id", default=ZUORA_ACCESS_KEY_ID)
    parser.add_argument("--zuora-secret-access-key", default=ZUORA_SECRET_ACCESS_KEY)
    parser.add_argument("--zuora-client-id", default=ZUORA_CLIENT_ID)
    parser.add_argument("--zuora-client-secret", default=ZUORA_CLIENT_SECRET)
    parser.add_argument(
        "--zuora-token-seconds", type=float, default=3599.0, help="OAuth token life"
    )
    parser.add_argument(
        "--webhook-url",
        default=None,
        help="POST signed Stripe events here when runs finish (e.g. the URL "
        "`report-gateway listen` prints)",
    )
    parser.add_argument(
        "--webhook-secret", default=STRIPE_WEBHOOK_SECRET, help="the secret events are signed with"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    config = SandboxConfig(
        seed=args.seed,
        run_seconds=args.run_seconds,
        result_rows=args.result_rows,
        result_bytes=args.result_bytes,
        url_ttl_seconds=args.url_ttl,
        v2_concurrency_limit=args.v2_concurrency_limit,
        zuora_access_key_id=args.zuora_access_key_id,
        zuora_secret_access_key=args.zuora_secret_access_key,
        zuora_client_id=args.zuora_client_id,
        zuora_client_secret=args.zuora_client_secret,
        zuora_token_seconds=args.zuora_token_seconds,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )
    server = make_server(args.host, args.port, SandboxApp(config))
    url = f"http://{args.host}:{server.server_address[1]}"
    print(f"report-gateway-sandbox serving on {url}", flush=True)
    print(f"  Stripe v1/v2 base URL: {url}   (any sk_test_... key, e.g. {STRIPE_TEST_KEY})")
    print(f"  Zuora base URL:        {url}{PREFIX}   (apiAccessKeyId {args.zuora_access_key_id})")
    print(f"  Zuora REST base URL:   {url}{REST_PREFIX}   (OAuth client {args.zuora_client_id})")
    if args.webhook_url:
        print(f"  webhooks:              Stripe events to {args.webhook_url}")
    print(f"  control:               {url}/_sandbox/config, {url}/_sandbox/stats", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

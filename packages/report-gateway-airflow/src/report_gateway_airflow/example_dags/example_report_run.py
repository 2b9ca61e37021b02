"""Example DAG: yesterday's Stripe balance report for three accounts, one mapped task each.

Each mapped task starts its account's run (once, whatever the retries), defers while
Stripe works (the worker slot is free meanwhile), then downloads the CSV to
``{report_gateway_output}/{ds}/{map_index}.csv`` on a worker (map index 0, 1, 2: the
accounts in ``ACCOUNTS`` order). The ``report_gateway`` pool
(created with ``--include-deferred``, so a deferred task whose run is running at the provider
keeps its slot) caps the runs of this provider across every worker: size it to the
provider's concurrency limit (Stripe v2: 500 running runs in live mode, 100 in a sandbox)
minus what else uses the same key. Connection ``report_gateway_default`` (type ``report_gateway``)
holds the settings; see the package README.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from report_gateway_airflow.operators import ReportRunOperator

ACCOUNTS = ["acct_1Example000001", "acct_1Example000002", "acct_1Example000003"]

with DAG(
    dag_id="example_report_gateway",
    schedule="@daily",
    start_date=pendulum.datetime(2023, 11, 1, tz="UTC"),
    catchup=False,
    tags=["example", "report-gateway"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
) as dag:
    ReportRunOperator.partial(
        task_id="balance_report",
        provider="stripe",
        report_id="balance_change_from_activity.itemized.3",
        parameters={
            # The day before the logical date (Stripe takes ISO dates). A scheduled-only DAG
            # can use "{{ data_interval_start.isoformat() }}" and "...end..." instead; a
            # manual run's data interval is empty.
            "interval_start": "{{ macros.ds_add(ds, -1) }}",
            "interval_end": "{{ ds }}",
        },
        output=(
            "{{ var.value.get('report_gateway_output', '/tmp/report-gateway') }}"
            "/{{ ds }}/{{ task_instance.map_index }}.csv"
        ),
        # With the pool created (README: "Pools"), uncomment this line:
        # pool="report_gateway",
        poll_interval=1.0,
    ).expand(scope=[{"account": account} for account in ACCOUNTS])

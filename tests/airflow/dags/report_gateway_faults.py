"""Test DAG (tests/airflow): a task retried after its create, and a provider run that fails."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG
from report_gateway_airflow.operators import ReportRunOperator

INTERVAL = {"interval_start": 1_700_000_000, "interval_end": 1_700_086_400}
OUT = "{{ var.value.get('report_gateway_output') }}"

with DAG(
    dag_id="report_gateway_faults",
    schedule=None,
    start_date=pendulum.datetime(2023, 11, 1, tz="UTC"),
    catchup=False,
) as dag:
    # Its first poll fails (the test injects the error), so try 1 fails after the create.
    ReportRunOperator(
        task_id="retried",
        provider="stripe-v2",
        report_id="report_itemized_balance_change",
        parameters=INTERVAL,
        output=OUT + "/retried.csv",
        retries=1,
        retry_delay=timedelta(0),
        poll_interval=0.2,
    )
    # The provider fails this run (the test injects it): no retry can help.
    ReportRunOperator(
        task_id="provider_fails",
        provider="stripe",
        report_id="balance_change_from_activity.itemized.3",
        parameters=INTERVAL,
        output=OUT + "/fails.csv",
        retries=0,
        poll_interval=0.2,
    )

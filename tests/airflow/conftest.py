"""The Airflow provider against a real Airflow 3 (the `airflow` nox session's environment).

A throwaway AIRFLOW_HOME on SQLite is made once per session (``airflow db migrate``), before
anything imports Airflow (its configuration is read at import). Each test starts the
sandbox (the ``sandbox`` fixture, on 127.0.0.1) and runs ``airflow dags test`` in a
subprocess, so Airflow's own processes, logging and secrets masker are the real ones.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig

HERE = Path(__file__).parent
HOME = Path(tempfile.mkdtemp(prefix="report-gateway-airflow-home-"))
DAGS = HOME / "dags"
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
}
# Before any test module imports Airflow.
os.environ.update(AIRFLOW_ENV)

PACKAGE = Path(__file__).parents[2] / "packages/report-gateway-airflow/src/report_gateway_airflow"
EXAMPLE = PACKAGE / "example_dags" / "example_report_run.py"
ROWS = 300
LOGICAL_DATE = "2023-11-15"


def airflow_command() -> str:
    script = Path(sys.executable).parent / "airflow"
    return str(script) if script.exists() else "airflow"


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """AIRFLOW_HOME with a migrated SQLite database and the DAGs under test."""
    DAGS.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE, DAGS / EXAMPLE.name)
    for dag_file in (HERE / "dags").glob("*.py"):
        shutil.copy(dag_file, DAGS / dag_file.name)
    subprocess.run(
        [airflow_command(), "db", "migrate"],
        env={**os.environ, **AIRFLOW_ENV},
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield HOME
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(run_seconds=1.0, result_rows=ROWS)


def connection(sandbox: Sandbox) -> dict[str, Any]:
    """The one connection a user creates: the key in the (masked) password field."""
    url = sandbox.stripe_base_url
    return {
        "conn_type": "report_gateway",
        "password": STRIPE_TEST_KEY,
        "extra": {
            "stripe": {"base_url": url, "files_base_url": url},
            "stripe-v2": {"base_url": url},
        },
    }


class DagRun:
    def __init__(self, done: subprocess.CompletedProcess[str], home: Path, dag_id: str) -> None:
        self.returncode = done.returncode
        self.output = done.stdout + done.stderr
        self.home = home
        self.dag_id = dag_id

    def logs(self) -> str:
        """Every task log file Airflow wrote under AIRFLOW_HOME/logs."""
        folder = self.home / "logs"
        return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())

    def run_id(self) -> str:
        """The DAG run ``dags test`` made (each makes a new one; tests share the database)."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            (run_id,) = db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
                (self.dag_id,),
            ).fetchone()
        return str(run_id)

    def xcoms(self, task_id: str) -> dict[int, Any]:
        """``return_value`` XComs of ``task_id`` by map index, from the metadata database."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT map_index, value FROM xcom WHERE dag_id = ? AND task_id = ?"
                " AND run_id = ? AND key = 'return_value'",
                (self.dag_id, task_id, self.run_id()),
            ).fetchall()
        return {index: json.loads(value) for index, value in rows}

    def states(self) -> dict[tuple[str, int], tuple[str, int]]:
        """(task id, map index) -> (state, try number)."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute(
                "SELECT task_id, map_index, state, try_number FROM task_instance"
                " WHERE dag_id = ? AND run_id = ?",
                (self.dag_id, self.run_id()),
            ).fetchall()
        return {(t, m): (s, n) for t, m, s, n in rows}


@pytest.fixture
def dags_test(airflow_home: Path, sandbox: Sandbox, tmp_path: Path) -> Any:
    """``dags_test(dag_id)``: ``airflow dags test`` against this test's sandbox; files go
    under ``tmp_path / "out"`` (the ``report_gateway_output`` variable)."""

    def run(dag_id: str, *, stored_connection: bool = False) -> DagRun:
        """``stored_connection``: the connection is in the metadata database (``airflow
        connections add``, as the README shows) instead of an AIRFLOW_CONN_* variable."""
        env = {
            **os.environ,
            **AIRFLOW_ENV,
            "AIRFLOW_VAR_REPORT_GATEWAY_OUTPUT": str(tmp_path / "out"),
        }
        # The key reaches the tasks only through the connection.
        env.pop("STRIPE_API_KEY", None)
        env.pop("AIRFLOW_CONN_REPORT_GATEWAY_DEFAULT", None)
        conn = connection(sandbox)
        if stored_connection:
            subprocess.run(
                [
                    airflow_command(),
                    *("connections", "add", "report_gateway_default"),
                    *("--conn-type", conn["conn_type"]),
                    *("--conn-password", conn["password"]),
                    *("--conn-extra", json.dumps(conn["extra"])),
                ],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
        else:
            env["AIRFLOW_CONN_REPORT_GATEWAY_DEFAULT"] = json.dumps(conn)
        try:
            done = subprocess.run(
                [airflow_command(), "dags", "test", dag_id, LOGICAL_DATE],
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
        finally:
            if stored_connection:
                subprocess.run(
                    [airflow_command(), "connections", "delete", "report_gateway_default"],
                    env=env,
                    check=False,
                    capture_output=True,
                    timeout=120,
                )
        return DagRun(done, airflow_home, dag_id)

    return run

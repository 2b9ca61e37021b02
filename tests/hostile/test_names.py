"""Class 1: a server-chosen name never decides where the file goes.

Safe behaviour: the result lands directly inside the folder the caller named, under a
safe name, and nothing is written anywhere else; or the call fails with a GatewayError
before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from report_gateway import GatewayError
from report_gateway.cli import main

NAMES = {
    "name-dotdot": "../../evil.csv",
    "name-absolute": "/tmp/hostile-evil-absolute.csv",
    "name-dots-only": "..",
    "name-nul": "a\x00b.csv",
    "name-backslash": "..\\..\\evil.csv",
    "name-too-long": "a" * 300 + ".csv",
    "name-control-chars": "bad\nname\r\x1b.csv",
    "name-hidden": ".bashrc",
    "name-empty": "",
    "name-slash-in-middle": "sub/dir/evil.csv",
}


def _assert_contained(workdir: Path, before: set[Path], written: Path | None) -> None:
    after = {p for p in workdir.parent.rglob("*")}
    new = after - before
    assert all(p.parent == workdir for p in new), f"escaped: {sorted(map(str, new))}"
    assert not Path("/tmp/hostile-evil-absolute.csv").exists()
    if written is not None:
        assert written.parent == workdir
        assert not written.name.startswith(".")
        assert len(os.fsencode(written.name)) <= 240
        assert "\x00" not in written.name
        assert "/" not in written.name


@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
def test_stripe_filename_stays_inside_the_folder(name: str, kit: Any, workdir: Path) -> None:
    before = {p for p in workdir.parent.rglob("*")}
    with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV), filename=name) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        try:
            written: Path | None = gw.download(run, workdir)
        except GatewayError:
            written = None
    _assert_contained(workdir, before, written)
    if written is not None:
        assert written.read_bytes() == kit.CSV


RUN_IDS = {
    "runid-traversal-v2": ("stripe-v2", "../../../escape"),
    "runid-traversal-zuora": ("zuora", "../escape"),
    "runid-absolute-v2": ("stripe-v2", "/tmp/hostile-evil-absolute"),
}


@pytest.mark.parametrize(("provider", "run_id"), list(RUN_IDS.values()), ids=list(RUN_IDS))
def test_run_id_used_as_a_name_stays_inside(
    provider: str, run_id: str, kit: Any, workdir: Path
) -> None:
    import codecs

    body = kit.CSV
    if provider == "zuora":
        body = codecs.BOM_UTF16_LE + kit.CSV.decode().replace(",", "\t").encode("utf-16-le")
    before = {p for p in workdir.parent.rglob("*")}
    with kit.provider_server(provider, kit.fixed(body), size=len(body), run_id=run_id) as s:
        gw = kit.gateway_for(provider, s)
        run = gw.get(provider, run_id)  # the id the server answers with (checked)
        try:
            written: Path | None = gw.download(run, workdir)
        except GatewayError:
            written = None
    _assert_contained(workdir, before, written)


def test_cli_output_folder_with_traversal_name(
    kit: Any, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cli-o-folder-traversal: `download -o FOLDER` obeys the same rule."""
    before = {p for p in workdir.parent.rglob("*")}
    with kit.provider_server(
        "stripe", kit.fixed(kit.CSV), size=len(kit.CSV), filename="../../evil.csv"
    ) as s:
        code = main(
            [
                "--set",
                f"api_key={kit.STRIPE_KEY}",
                "--base-url",
                s.base,
                "download",
                "stripe",
                kit.RUN_ID["stripe"],
                "-o",
                str(workdir),
            ]
        )
    assert code in (0, 7)
    _assert_contained(workdir, before, None)
    if code == 0:
        assert [p.read_bytes() for p in workdir.iterdir()] == [kit.CSV]

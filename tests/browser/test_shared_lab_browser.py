"""The shared JupyterLab server: the kernels a test file started end with the file, and
only those (see ``_fresh_kernels`` in ``tests/browser/conftest.py``)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.browser.conftest import shut_down_kernels_since
from tests.browser.lab_page import TIMEOUT
from tests.timing import within

pytestmark = [pytest.mark.browser, TIMEOUT]


def start_kernel(lab) -> str:
    request = urllib.request.Request(
        f"{lab.url}/api/kernels",
        data=json.dumps({"name": "python3"}).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=within(60)) as reply:
        return json.load(reply)["id"]


def kernel_ids(lab) -> set[str]:
    request = urllib.request.Request(
        f"{lab.url}/api/kernels", headers={"Authorization": f"token {lab.token}"}
    )
    with urllib.request.urlopen(request, timeout=within(30)) as reply:
        return {kernel["id"] for kernel in json.load(reply)}


def test_the_kernels_a_file_started_are_shut_down_and_no_others(lab):
    kept = start_kernel(lab)  # as if an earlier file's: it must survive
    before = kernel_ids(lab)
    started = [start_kernel(lab), start_kernel(lab)]
    assert set(started) <= kernel_ids(lab)
    assert shut_down_kernels_since(lab, before) == sorted(started)
    after = kernel_ids(lab)
    assert kept in after
    assert not set(started) & after
    shut_down_kernels_since(lab, before - {kept})

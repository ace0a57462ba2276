"""Activate and delete of the same image, at once: `active` never dangles (issue 11: the
link was left pointing at a deleted image in 163 of 300 runs)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
from store_helpers import add_image

from livestrap.errors import StoreError
from livestrap.store.images import ImageStore

pytestmark = [pytest.mark.unit, pytest.mark.security]

ROUNDS = 100


def _widen_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sleep after reading `active`, as a loaded machine would: delete has checked that
    the image is not active, and activate gets to run before delete renames it."""
    read = ImageStore.active_id

    def slow_active_id(self: ImageStore) -> str | None:
        found = read(self)
        time.sleep(0.002)
        return found

    monkeypatch.setattr(ImageStore, "active_id", slow_active_id)


def test_activate_and_delete_never_leave_active_dangling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _widen_window(monkeypatch)
    dangling = 0
    for i in range(ROUNDS):
        store = ImageStore(tmp_path / f"data{i}")
        add_image(store, "keep")
        add_image(store, "victim")
        store.activate("keep")
        start = threading.Barrier(2)

        def activate(store: ImageStore = store, start: threading.Barrier = start) -> None:
            start.wait()
            time.sleep(0.0005)  # let delete read `active` first
            with contextlib.suppress(StoreError):  # deleted first: not found
                store.activate("victim")

        def delete(store: ImageStore = store, start: threading.Barrier = start) -> None:
            start.wait()
            with contextlib.suppress(StoreError):  # activated first: refused as active
                store.delete("victim")

        threads = [threading.Thread(target=activate), threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        active = store.active_id()
        assert active is not None
        if not (store.images_dir / active).is_dir():
            dangling += 1
    assert dangling == 0, f"`active` dangled in {dangling} of {ROUNDS} rounds"

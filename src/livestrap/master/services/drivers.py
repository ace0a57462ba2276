"""Driver coverage as the API and the CLI show it: an image's record (metadata.yaml's
`driver_coverage`) summarized, a machine's PCI devices checked against it, and a
registered node's gaps against the active image (on read, the decoded record cached).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from livestrap.drivers import DeviceCheck, ModuleCoverage, check_devices, gaps, summarize
from livestrap.errors import StoreError
from livestrap.lspci import PciDevice, class_name, devices_from_facts
from livestrap.master.schemas.drivers import DeviceStatus, DriverCheck, DriverClass, ImageDrivers
from livestrap.master.schemas.nodes import NodeDetail
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, ImageMetadata

CACHED_IMAGES = 4


class NoCoverage(StoreError):
    """An image built before driver coverage was recorded."""


def coverage_of(meta: ImageMetadata) -> list[ModuleCoverage]:
    if meta.driver_coverage is None:
        raise NoCoverage(
            f"image {meta.id} was built before images recorded their driver coverage: "
            "rebuild it to check drivers"
        )
    return meta.driver_coverage.module_coverage()


def image_drivers(meta: ImageMetadata) -> ImageDrivers:
    """The summary `images drivers IMAGE` prints: per PCI class, NICs and storage first."""
    modules = coverage_of(meta)
    assert meta.driver_coverage is not None
    rows = summarize(modules, meta.driver_coverage.module_classes())
    return ImageDrivers(
        image=meta.id,
        modules=len(modules),
        classes=[
            DriverClass(
                base_class=None if r.base_class is None else f"{r.base_class:02x}",
                name=r.name,
                modules=r.modules,
                patterns=r.patterns,
                vendors=r.vendors,
                incomplete_firmware=r.incomplete_firmware,
            )
            for r in rows
        ],
        missing_firmware={m.name: list(m.missing_firmware) for m in modules if m.missing_firmware},
    )


def device_status(check: DeviceCheck) -> DeviceStatus:
    dev = check.device
    return DeviceStatus(
        slot=dev.slot,
        ids=dev.ids,
        class_code=dev.class_code,
        class_name=class_name(dev.base_class),
        status=check.status,  # type: ignore[arg-type]  # one of DeviceStatusName
        important=check.important,
        modules=list(check.modules),
        missing_firmware=list(check.missing_firmware),
    )


def check_image(meta: ImageMetadata, devices: Iterable[PciDevice]) -> DriverCheck:
    """Every device against the image, in the order drivers.check_devices gives."""
    checks = check_devices(devices, coverage_of(meta))
    missing = gaps(checks)
    return DriverCheck(
        image=meta.id,
        devices=[device_status(c) for c in checks],
        gaps=len(missing),
        important_gaps=sum(1 for c in missing if c.important),
    )


class CoverageCache:
    """Decoded coverage per image, keyed by its metadata file's identity (inode, mtime):
    images are immutable, so a node page costs a stat, not a metadata parse."""

    def __init__(self, size: int = CACHED_IMAGES) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int, int], list[ModuleCoverage] | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: ImageStore, image_id: str) -> list[ModuleCoverage] | None:
        """None: the image recorded no coverage."""
        st = (store.path(image_id) / METADATA).stat()
        key = (image_id, st.st_ino, st.st_mtime_ns)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        meta = store.get(image_id)
        value = None if meta.driver_coverage is None else meta.driver_coverage.module_coverage()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


CACHE = CoverageCache()


def node_driver_gaps(
    store: ImageStore, facts: dict[str, Any], cache: CoverageCache = CACHE
) -> list[DeviceStatus] | None:
    """The node's NICs and storage controllers the active image cannot drive (or lacks
    firmware for). None: nothing to say (no active image, one without a coverage record,
    or no PCI facts from the node)."""
    pci = facts.get("pci")
    if not isinstance(pci, list):
        return None
    try:
        active = store.active_id()
        if active is None:
            return None
        modules = cache.get(store, active)
    except (StoreError, OSError):
        return None
    if modules is None:
        return None
    wanted = [d for d in devices_from_facts(pci) if d.base_class in (0x01, 0x02)]
    return [device_status(c) for c in gaps(check_devices(wanted, modules))]


def with_driver_gaps(detail: NodeDetail, store: ImageStore) -> NodeDetail:
    """The node's detail with `driver_gaps` filled in (API and console alike)."""
    return detail.model_copy(update={"driver_gaps": node_driver_gaps(store, detail.facts)})

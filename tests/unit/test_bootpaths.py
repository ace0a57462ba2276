"""The /boot URLs: formatted and parsed by one module, answered by the routes it names."""

from __future__ import annotations

import pytest
from starlette.routing import Match

from livestrap import bootpaths
from livestrap.bootpaths import BootFileRequest, file_url, mac_file_url, parse_file_url, script_url
from livestrap.master.routes.boot import router
from livestrap.store.manifest import ARTIFACTS, IMAGE_ID_RE

pytestmark = pytest.mark.unit

BASE = "http://10.0.0.1:8080"
MAC = "52:54:00:12:34:56"
HYPHENS = "52-54-00-12-34-56"


def test_urls_exact() -> None:
    assert script_url(BASE) == BASE + "/boot/ipxe?mac=${net0/mac}"
    assert script_url(BASE + "/", MAC) == BASE + "/boot/ipxe?mac=" + MAC
    assert file_url(BASE, "img-1", "vmlinuz") == BASE + "/boot/images/img-1/vmlinuz?mac=${net0/mac}"
    assert mac_file_url(BASE + "/", "img-1", "root.squashfs") == (
        BASE + "/boot/m/${net0/mac:hexhyp}/images/img-1/root.squashfs"
    )
    assert bootpaths.SENT_PATH == "/boot/nginx/sent"


def test_boot_files_are_the_stores_artifacts() -> None:
    assert bootpaths.BOOT_FILES == ARTIFACTS


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("/boot/images/img-a/vmlinuz?mac=52:54:00:12:34:56",
         BootFileRequest("img-a", "vmlinuz", "52:54:00:12:34:56")),
        ("/boot/images/img-a/vmlinuz?mac=52%3A54%3A00%3A12%3A34%3A56",
         BootFileRequest("img-a", "vmlinuz", "52:54:00:12:34:56")),
        ("/boot/m/52-54-00-12-34-56/images/img-a/root.squashfs",
         BootFileRequest("img-a", "root.squashfs", "52-54-00-12-34-56")),
        ("/boot/images/img-a/initrd.img", BootFileRequest("img-a", "initrd.img", None)),
        ("/boot/ipxe?mac=x", None),
        ("/boot/images/img-a/sub/vmlinuz", None),
        ("/api/v1/nodes", None),
    ],
)  # fmt: skip
def test_parse_original_uri(uri: str, parsed: BootFileRequest | None) -> None:
    """Moved from test_netboot_nginx.py with the parser (was master.accel)."""
    assert parse_file_url(uri) == parsed


@pytest.mark.parametrize("image_id", ["img-1", "bookworm-20240601-ab12cd", "A.b_c-9"])
@pytest.mark.parametrize("name", ARTIFACTS)
def test_parse_inverts_format(image_id: str, name: str) -> None:
    assert IMAGE_ID_RE.fullmatch(image_id)
    path = file_url("", image_id, name, MAC)
    assert parse_file_url(path) == BootFileRequest(image_id, name, MAC)
    path = mac_file_url(BASE, image_id, name, HYPHENS).removeprefix(BASE)
    assert parse_file_url(path) == BootFileRequest(image_id, name, HYPHENS)


def endpoint(path: str, method: str = "GET") -> tuple[str, dict[str, str]]:
    """The /boot route a request path reaches: its endpoint's name and path parameters."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in router.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return child["endpoint"].__name__, child["path_params"]
    raise AssertionError(f"no /boot route for {method} {path}")


def test_every_format_reaches_its_route() -> None:
    path = script_url("", MAC).partition("?")[0]
    assert endpoint(path) == ("boot_script", {})
    path = file_url("", "img-1", "vmlinuz", MAC).partition("?")[0]
    assert endpoint(path) == ("artifact", {"image_id": "img-1", "name": "vmlinuz"})
    assert endpoint(mac_file_url("", "img-1", "root.squashfs", HYPHENS)) == (
        "artifact_for_mac",
        {"node_mac": HYPHENS, "image_id": "img-1", "name": "root.squashfs"},
    )
    assert endpoint(bootpaths.SENT_PATH, "POST") == ("nginx_sent", {})

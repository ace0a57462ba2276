"""The /boot URLs, formatted and parsed by one pure module (livestrap.bootpaths)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from livestrap import bootpaths
from livestrap.bootpaths import BootFileRequest, file_url, mac_file_url, parse_file_url, script_url
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
    assert bootpaths.loader_url(BASE + "/", "ipxe.efi") == BASE + "/boot/efi/ipxe.efi"


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


def test_pure_and_standard_library_only() -> None:
    """master/ and netboot/ (pure renderers among them) both import it: no I/O, no
    subprocess, no livestrap module it could pull in."""
    tree = ast.parse(Path(bootpaths.__file__).read_text())
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert modules and all(m.split(".")[0] in sys.stdlib_module_names for m in modules)
    assert not {"subprocess", "os", "pathlib", "io", "socket"} & {m.split(".")[0] for m in modules}

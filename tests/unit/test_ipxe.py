"""The iPXE scripts, byte for byte: a node cannot tell us what it did not understand."""

from __future__ import annotations

import pytest

from livestrap.master.ipxe import (
    check_base_url,
    kernel_arguments,
    render_boot_script,
    render_no_image_script,
)

pytestmark = pytest.mark.unit

BASE = "http://10.0.0.1:8080"
BOOT_SCRIPT = (
    "#!ipxe\n"
    "kernel http://10.0.0.1:8080/boot/images/img-1/vmlinuz?mac=${net0/mac}"
    " initrd=initrd.img boot=live"
    " fetch=http://10.0.0.1:8080/boot/m/${net0/mac:hexhyp}/images/img-1/root.squashfs"
    " livestrap.url=http://10.0.0.1:8080 livestrap.token=tok-EN_1 livestrap.image=img-1"
    " BOOTIF=01-${net0/mac:hexhyp} livestrap.boot=ipxe console=tty0 console=ttyS0,115200n8"
    " quiet systemd.show_status=1 || goto failed\n"
    "initrd --name initrd.img http://10.0.0.1:8080/boot/images/img-1/initrd.img?mac=${net0/mac}"
    " || goto failed\n"
    "boot || goto failed\n"
    ":failed\n"
    "echo livestrap: booting image img-1 failed; retrying in 30 s\n"
    "sleep 30\n"
    "chain --replace --autofree http://10.0.0.1:8080/boot/ipxe?mac=${net0/mac}\n"
)


def test_boot_script_exact() -> None:
    script = render_boot_script(BASE, "img-1", "tok-EN_1", ["quiet", "systemd.show_status=1"])
    assert script == BOOT_SCRIPT


def test_boot_script_trailing_slash_and_retry() -> None:
    script = render_boot_script(BASE + "/", "img-1", "tok-EN_1", [], retry_s=5)
    assert "http://10.0.0.1:8080//" not in script
    assert script.endswith(
        "sleep 5\nchain --replace --autofree " + BASE + "/boot/ipxe?mac=${net0/mac}\n"
    )
    kernel_line = script.splitlines()[1]
    assert kernel_line.endswith("console=ttyS0,115200n8 || goto failed")


def test_fetch_url_ends_in_root_squashfs() -> None:
    """live-boot names the download after the URL's basename: no query string allowed."""
    fetch = next(a for a in kernel_arguments(BASE, "x", "t") if a.startswith("fetch="))
    assert fetch.endswith("/root.squashfs")
    assert "?" not in fetch


def test_no_image_script_exact() -> None:
    assert render_no_image_script(30, "https://master.example/") == (
        "#!ipxe\n"
        "echo livestrap: no active image on the master; retrying in 30 s\n"
        "sleep 30\n"
        "chain --replace --autofree https://master.example/boot/ipxe?mac=${net0/mac}\n"
    )


def test_no_image_script_with_reason() -> None:
    script = render_no_image_script(7, BASE, "the active image is unusable")
    assert script.splitlines()[1] == "echo livestrap: the active image is unusable; retrying in 7 s"


@pytest.mark.parametrize(
    "base", ["ftp://x", "http://a b", "http://x/${evil}", "10.0.0.1", "http://x\n#", ""]
)
def test_bad_base_url_refused(base: str) -> None:
    with pytest.raises(ValueError):
        check_base_url(base)
    with pytest.raises(ValueError):
        render_no_image_script(30, base)


@pytest.mark.parametrize("option", ["two words", "line\nbreak", "tab\tbed", "nul\x00"])
def test_option_that_would_split_the_line_refused(option: str) -> None:
    with pytest.raises(ValueError, match="kernel option"):
        render_boot_script(BASE, "img", "tok", [option])


def test_empty_options_skipped_and_bad_retry_refused() -> None:
    assert render_boot_script(BASE, "i", "t", ["", "a=1"]) == render_boot_script(
        BASE, "i", "t", ["a=1"]
    )
    with pytest.raises(ValueError, match="retry"):
        render_no_image_script(0, BASE)
    with pytest.raises(ValueError, match="one printable line"):
        render_no_image_script(5, BASE, "two\nlines")

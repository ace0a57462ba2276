"""What the master writes for a node, read back by the node's side: the iPXE script's
kernel line parsed by the agent's own code, and every URL the master hands out (script,
dnsmasq, QEMU's TFTP, nginx) reaching the /boot route meant for it with the node's MAC.

The agent stays standalone (it may not import livestrap.bootpaths), so this is where the
two sides of the kernel command line meet.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.routing import Match

from livestrap import bootpaths
from livestrap.agent.config import (
    DEFAULT_HEARTBEAT_S,
    AgentConfig,
    build_config,
    load_config,
    parse_cmdline,
)
from livestrap.bootpaths import file_url, mac_file_url, script_url
from livestrap.master.events import normalize_mac
from livestrap.master.ipxe import render_boot_script, render_no_image_script
from livestrap.master.routes import boot, boot_notices
from livestrap.netboot.dnsmasq import DnsmasqOptions, render_dnsmasq_config
from livestrap.netboot.nginx import NginxOptions, render_nginx_config
from livestrap.netboot.qemu import render_tftp_script

pytestmark = pytest.mark.unit

MAC = "52:54:00:ab:cd:0e"
HYPHENS = "52-54-00-ab-cd-0e"
TOKEN = "Zq3-x_Y9aB0cD1eF2gH3iJ4kL5mN6oP7qR8sT9uV0wX"  # token_urlsafe(32): 43 characters
EXTRAS = ["quiet", "systemd.show_status=1", "livestrap.debug", "ip=dhcp"]


def endpoint(path: str, method: str = "GET") -> tuple[str, dict[str, str]]:
    """The /boot route a request path reaches: its endpoint's name and path parameters."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in [*boot.router.routes, *boot_notices.router.routes]:
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


def expand(text: str, mac: str = MAC) -> str:
    """What iPXE makes of the script on the node whose net0 has `mac`."""
    text = text.replace(bootpaths.IPXE_MAC_HYPHENS, mac.replace(":", "-"))
    text = text.replace(bootpaths.IPXE_MAC, mac)
    assert "${" not in text, text
    return text


def kernel_line(script: str) -> tuple[str, str]:
    """(kernel URL, the command line iPXE passes to it) of an expanded script."""
    line = next(x for x in script.splitlines() if x.startswith("kernel "))
    words = line.split()
    assert words[-3:] == ["||", "goto", "failed"]
    return words[1], " ".join(words[2:-3])


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://10.0.0.1:8080", "http://10.0.0.1:8080"),
        ("https://master.example/", "https://master.example"),
        ("http://[fd00::1]:8080", "http://[fd00::1]:8080"),
    ],
)
@pytest.mark.parametrize("image_id", ["img-1", "bookworm-20240601-ab12cd", "A.b_c-9"])
def test_agent_reads_what_the_script_writes(
    tmp_path: Path, base: str, url: str, image_id: str
) -> None:
    script = expand(render_boot_script(base, image_id, TOKEN, EXTRAS))
    _, cmdline = kernel_line(script)
    expected = AgentConfig(
        url=url, token=TOKEN, image=image_id, boot_mac=MAC, heartbeat_s=DEFAULT_HEARTBEAT_S,
        boot_path="ipxe",
    )  # fmt: skip
    assert build_config(parse_cmdline(cmdline)) == expected
    proc_cmdline = tmp_path / "cmdline"  # as the kernel shows it: one line, a newline
    proc_cmdline.write_text(cmdline + "\n")
    config, warnings = load_config(proc_cmdline, tmp_path / "no-agent.conf")
    assert (config, warnings) == (expected, [])


def test_every_agent_key_on_the_kernel_line_is_read() -> None:
    """No livestrap.* key the master writes is one the agent would silently ignore (the
    extras may carry others: an image's own options are not the agent's)."""
    script = expand(render_boot_script("http://10.0.0.1:8080", "img-1", TOKEN))
    _, cmdline = kernel_line(script)
    keys = [w.partition("=")[0] for w in cmdline.split()]
    ours = [k for k in keys if k.startswith("livestrap.") or k == "BOOTIF"]
    assert len(ours) == len(set(ours)) == len(parse_cmdline(cmdline)) == 5


def test_every_script_url_reaches_its_route_with_the_nodes_mac() -> None:
    base = "http://10.0.0.1:8080"
    script = expand(render_boot_script(base, "img-1", TOKEN))
    kernel, cmdline = kernel_line(script)
    fetch = next(w for w in cmdline.split() if w.startswith("fetch=")).removeprefix("fetch=")
    initrd = next(w for w in script.split() if w.startswith(base) and "initrd.img" in w)
    chain = script.splitlines()[-1].split()[-1]
    want = {
        kernel: ("artifact", bootpaths.KERNEL),
        initrd: ("artifact", bootpaths.INITRD),
        fetch: ("artifact_for_mac", bootpaths.SQUASHFS),
    }
    for url, (route, name) in want.items():
        parts = urlsplit(url)
        assert url.startswith(base + bootpaths.PREFIX + "/")
        assert endpoint(parts.path)[0] == route
        found = bootpaths.parse_file_url(url.removeprefix(base))
        assert found is not None and (found.image_id, found.name) == ("img-1", name)
        assert normalize_mac(found.mac) == MAC  # what the master writes on the timeline
    assert urlsplit(fetch).path.rsplit("/", 1)[1] == "root.squashfs"  # live-boot's file name
    assert_script_url(chain, base)


def assert_script_url(url: str, base: str) -> None:
    parts = urlsplit(url)
    assert url.startswith(base + bootpaths.PREFIX + "/")
    assert endpoint(parts.path) == ("boot_script", {})
    assert parts.query == f"mac={MAC}"


def test_no_image_script_asks_the_script_route_again() -> None:
    script = expand(render_no_image_script(30, "http://10.0.0.1:8080/"))
    assert_script_url(script.splitlines()[-1].split()[-1], "http://10.0.0.1:8080")


@pytest.mark.parametrize(
    "opts",
    [
        DnsmasqOptions("http://10.0.0.1:8080/", dhcp_range=("10.0.0.100", "10.0.0.200")),
        DnsmasqOptions("http://10.0.0.1:8080", proxy_subnet="10.0.0.0/24"),
    ],
)
def test_dnsmasq_points_ipxe_at_the_script_route(opts: DnsmasqOptions) -> None:
    config = expand(render_dnsmasq_config(opts))
    boot = [x for x in config.splitlines() if x.startswith("dhcp-boot=tag:ipxe,")]
    assert len(boot) == 1
    assert_script_url(boot[0].removeprefix("dhcp-boot=tag:ipxe,"), "http://10.0.0.1:8080")


def test_qemu_tftp_script_chains_to_the_script_route() -> None:
    chain = expand(render_tftp_script()).splitlines()[1].split()
    assert chain[0] == "chain"
    assert_script_url(chain[1], "http://10.0.2.100")


def test_nginx_hands_boot_to_the_master_and_its_notice_to_the_sent_route() -> None:
    config = render_nginx_config(NginxOptions(images_dir="/srv/images"))
    assert f"    location {bootpaths.PREFIX}/ {{" in config.splitlines()
    sent = next(x for x in config.splitlines() if "proxy_pass http://livestrap_master/" in x)
    path = sent.split()[-1].rstrip(";").removeprefix("http://livestrap_master")
    assert endpoint(path, "POST") == ("nginx_sent", {})

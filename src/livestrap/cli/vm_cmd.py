"""`livestrap vm boot` and `livestrap netboot dnsmasq-config|nginx-config`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from livestrap import datadir
from livestrap.cli import tables
from livestrap.cli.client import check_master_url
from livestrap.cli.options import DEFAULT_DATA_DIR, DataDir, renamed
from livestrap.cli.output import ListOutput, Quiet, chosen_format, print_rows
from livestrap.cli.remote import Remote, remote_app, remote_of
from livestrap.cli.tftp_cmd import write_local_tree
from livestrap.errors import OptionError, SpecError
from livestrap.master.config_load import load_settings
from livestrap.netboot import nginx
from livestrap.netboot.dnsmasq import DnsmasqOptions, check_options, render_dnsmasq_config
from livestrap.netboot.qemu import MASTER_IN_GUEST, NodeSpec
from livestrap.netboot.tftptree import SHIM
from livestrap.netboot.vm import VirtualNode, kvm_usable, stop_recorded

vm_app = remote_app("Virtual nodes that PXE-boot from the master.")
netboot_app = typer.Typer(help="Network boot on real networks.", no_args_is_help=True)
POLL_S = 2.0  # how often `vm boot` asks the master whether its nodes registered


def parse_sizes(value: str) -> tuple[float, ...]:
    """'8G,512M' -> (8.0, 0.5) GiB."""
    sizes = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        unit = part[-1].upper()
        factor = {"G": 1.0, "M": 1 / 1024, "T": 1024.0}.get(unit)
        number = part[:-1] if factor else part
        try:
            sizes.append(float(number) * (factor or 1.0))
        except ValueError:
            raise SpecError(f"--disks: {part!r} is not a size like 8G or 512M") from None
    return tuple(sizes)


def boots_so_far(remote: Remote, mac: str) -> int:
    """How many boots the inventory has seen for this MAC (0: not known yet)."""
    listed = remote.call("GET", "/api/v1/nodes", params={"mac": mac})
    return int(listed[0]["boots"]) if listed else 0


def wait_registered(
    nodes: list[VirtualNode],
    remote: Remote,
    timeout_s: float,
    console: Console,
    before: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Poll the master until every node reports for this boot (its boot count grows past
    `before`, so a node already in the inventory is not taken for registered at once)."""
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the nodes to register") as status:
        while len(found) < len(nodes) and time.monotonic() < deadline:
            for node in nodes:
                if node.spec.name in found:
                    continue
                if not node.running():
                    raise SpecError(f"{node.spec.name}: QEMU exited; see {node.workdir}")
                listed = remote.call("GET", "/api/v1/nodes", params={"mac": node.spec.mac(0)})
                if listed and int(listed[0]["boots"]) > before.get(node.spec.name, 0):
                    elapsed = time.monotonic() - node.started_at
                    found[node.spec.name] = listed[0]
                    console.print(f"{escape(node.spec.name)}: registered as "
                                  f"{escape(listed[0]['id'])} after {elapsed:.0f} s",
                                  highlight=False)  # fmt: skip
            if len(found) < len(nodes):
                status.update(f"waiting for {len(nodes) - len(found)} node(s) to register "
                              f"({timeout_s - (deadline - time.monotonic()):.0f} s)")  # fmt: skip
                time.sleep(POLL_S)
    return found


def master_address(master: str) -> tuple[str, int]:
    """HOST and PORT nodes reach the master at (QEMU forwards them there)."""
    parts = urlsplit(check_master_url(master))
    if parts.scheme != "http" or not parts.hostname:
        raise OptionError(f"--master {master!r}: expected http://HOST:PORT (nodes boot over HTTP)")
    return parts.hostname, parts.port or 80


def make_nodes(
    remote: Remote, count: int, name: str, serial: str | None, **spec: Any
) -> list[VirtualNode]:
    """The VirtualNodes to boot: named NAME or NAME1..NAMEn, serials numbered the same way."""
    host, port = master_address(remote.master)
    nodes = []
    for i in range(count):
        node_name = name if count == 1 else f"{name}{i + 1}"
        node_serial = serial if count == 1 else (f"{serial}-{i + 1}" if serial else None)
        if spec.get("firmware") == "secure-boot":
            spec = {**spec, "boot_file": SHIM}
        node_spec = NodeSpec(name=node_name, master_host=host, master_port=port,
                             serial=node_serial, **spec)  # fmt: skip
        node = VirtualNode(node_spec, datadir.DataDir(remote.data_dir).vm(node_name))
        if node_spec.firmware == "secure-boot":  # QEMU's TFTP serves shim, GRUB and the image
            node.tftp_root = node.workdir / "secure-boot-tftp"
            write_local_tree(remote.data_dir, node.tftp_root, f"http://{MASTER_IN_GUEST}")
        nodes.append(node)
    return nodes


@vm_app.command("boot")
def boot(
    ctx: typer.Context,
    firmware: Annotated[
        Literal["bios", "uefi", "secure-boot"],
        typer.Option(help="Node firmware (secure-boot: OVMF enforcing, shim -> GRUB)."),
    ] = "bios",
    memory: Annotated[int, typer.Option(help="Memory in MiB.")] = 1024,
    cpus: Annotated[int, typer.Option(help="Virtual CPUs.")] = 1,
    disks: Annotated[str, typer.Option(help="Disk sizes, e.g. 8G,4G.")] = "",
    nics: Annotated[int, typer.Option(help="NICs (the first one PXE-boots).")] = 1,
    serial: Annotated[str | None, typer.Option(help="SMBIOS serial number.")] = None,
    count: Annotated[int, typer.Option(help="How many nodes to boot at once.")] = 1,
    name: Annotated[str, typer.Option(help="Node name (prefix with --count).")] = "vm",
    accel: Annotated[
        Literal["auto", "tcg", "kvm"],
        typer.Option(help="auto: KVM if a probe shows it works, else TCG."),
    ] = "auto",
    timeout: Annotated[int, typer.Option(help="Stop the nodes after this many seconds.")] = 900,
    wait: Annotated[bool, typer.Option(help="Wait until the nodes register.")] = True,
    detach: Annotated[
        bool,
        typer.Option(
            help="Return once they registered (at once with --no-wait), leaving the nodes "
            "running (still bounded by --timeout)."
        ),
    ] = False,
    output: ListOutput = None,
    quiet: Quiet = False,
) -> None:
    """Boot QEMU nodes that PXE-boot from the master; console logs go to DATA_DIR/vms.

    Progress goes to stderr; stdout gets the registered nodes (as `nodes list` prints them;
    -q: their ids), so `id=$(livestrap vm boot --detach -q)` works.
    """
    fmt = chosen_format(output, "table", quiet=quiet)
    remote = remote_of(ctx)
    master_address(remote.master)  # before the KVM probe, which takes a few seconds
    chosen: Literal["tcg", "kvm"] = "tcg"
    if accel == "kvm" or (accel == "auto" and kvm_usable()):
        chosen = "kvm"
    nodes = make_nodes(
        remote, count, name, serial, firmware=firmware, memory_mib=memory, cpus=cpus,
        disks_gib=parse_sizes(disks), nics=nics, accel=chosen,
    )  # fmt: skip
    console = Console(stderr=True)
    console.print(f"accelerator: {chosen}")
    before = {n.spec.name: boots_so_far(remote, n.spec.mac(0)) for n in nodes} if wait else {}
    detached = False
    try:
        for node in nodes:
            node.start(max_s=timeout)
            console.print(f"{escape(node.spec.name)}: {firmware} PXE, MAC {node.spec.mac(0)}, "
                          f"console {escape(str(node.console_log))}", highlight=False)  # fmt: skip
        if wait:
            found = wait_registered(nodes, remote, timeout, console, before)
            if len(found) < len(nodes):
                raise SpecError(
                    f"{len(nodes) - len(found)} node(s) did not register in {timeout} s"
                )
            print_rows(fmt, [found[n.spec.name] for n in nodes], tables.NODES)
        if detach:
            detached = True
            console.print(f"nodes left running for up to {timeout} s; stop them with "
                          f"`livestrap vm stop --data-dir {remote.data_dir}`",
                          highlight=False, markup=False)  # fmt: skip
            return
        console.print("stop the nodes with Ctrl-C (they stop by themselves after --timeout)")
        deadline = max(n.started_at for n in nodes) + timeout
        while time.monotonic() < deadline and any(n.running() for n in nodes):
            time.sleep(1)
    finally:
        if not detached:
            for node in nodes:
                node.stop()


@vm_app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the nodes `vm boot --detach` left running (in DATA_DIR/vms)."""
    stopped = stop_recorded(datadir.DataDir(remote_of(ctx).data_dir).vms)
    if stopped:
        typer.echo(f"stopped: {', '.join(stopped)}")
    else:
        typer.echo("no running nodes", err=True)


def _old_name(name: str) -> Any:
    """A renamed option's old spelling: still accepted (with a warning), not in --help."""
    return typer.Option(name, hidden=True, help="Deprecated spelling; see --help.")


@netboot_app.command("dnsmasq-config")
def dnsmasq_config(
    boot_url: Annotated[
        str | None,
        typer.Option("--boot-url", help="URL nodes use to reach the master.", show_default=False),
    ] = None,
    interface: Annotated[str | None, typer.Option(help="Interface to serve on.")] = None,
    dhcp_range: Annotated[str | None, typer.Option(help="FIRST,LAST: full DHCP.")] = None,
    proxy_dhcp: Annotated[str | None, typer.Option(help="SUBNET: proxy-DHCP.")] = None,
    tftp_root: Annotated[Path, typer.Option(help="Where Debian's iPXE binaries are.")] = Path(
        "/usr/lib/ipxe"
    ),
    tftp: Annotated[
        bool, typer.Option(help="PXE: serve iPXE over TFTP (--no-tftp: no TFTP at all).")
    ] = True,
    http_boot: Annotated[
        bool, typer.Option(help="UEFI HTTP boot: hand HTTPClient firmware the master's ipxe.efi.")
    ] = True,
    secure_boot: Annotated[
        bool,
        typer.Option(
            help="UEFI PXE gets Debian's signed shim -> GRUB (give --tftp-root the master's "
            "TFTP tree)."
        ),
    ] = False,
    dhcp_range_v6: Annotated[
        str | None, typer.Option(help="FIRST,LAST of one /64: DHCPv6 and router advertisements.")
    ] = None,
    boot_url_v6: Annotated[
        str | None,
        typer.Option(
            help="URL nodes reach the master at over IPv6, e.g. http://[2001:db8::10]:8080 "
            "(default: --boot-url if its host is a name)."
        ),
    ] = None,
    old_master: Annotated[str | None, _old_name("--master")] = None,
) -> None:
    """Print a dnsmasq configuration: DHCP or proxy-DHCP, iPXE over TFTP (PXE) or over HTTP
    from the master (UEFI HTTP boot), DHCPv6, chain to the master at --boot-url (required)."""
    url = renamed(boot_url or "", old_master, "dnsmasq-config --master", "--boot-url")
    if not url:
        raise typer.BadParameter(
            "missing: give the URL nodes reach the master at, e.g. http://MASTER:8080",
            param_hint="--boot-url",
        )
    first, _, last = (dhcp_range or "").partition(",")
    first6, _, last6 = (dhcp_range_v6 or "").partition(",")
    opts = DnsmasqOptions(
        master_url=url, interface=interface,
        dhcp_range=(first, last) if dhcp_range else None, proxy_subnet=proxy_dhcp,
        tftp_root=str(tftp_root), tftp=tftp, http_boot=http_boot, secure_boot=secure_boot,
        dhcp_range_v6=(first6, last6) if dhcp_range_v6 else None, master_url_v6=boot_url_v6,
    )  # fmt: skip
    problems = check_options(opts)
    if problems:
        raise SpecError("dnsmasq-config: " + "; ".join(problems))
    typer.echo(render_dnsmasq_config(opts), nl=False)


UPSTREAM = "http://127.0.0.1:8080"


@netboot_app.command("nginx-config")
def nginx_config(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    upstream: Annotated[
        str, typer.Option("--upstream", help="URL nginx reaches the master at.")
    ] = UPSTREAM,
    nginx_listen: Annotated[
        str, typer.Option("--nginx-listen", help="nginx's listen: PORT or ADDRESS:PORT.")
    ] = "80",
    server_name: Annotated[str, typer.Option(help="nginx's server_name.")] = "_",
    old_master: Annotated[str | None, _old_name("--master")] = None,
    old_listen: Annotated[str | None, _old_name("--listen")] = None,
    direct: Annotated[
        bool,
        typer.Option(
            help="nginx sends image files without asking the master first (it reports "
            "them afterwards): no wait for the first byte, no per-request check by the master."
        ),
    ] = False,
) -> None:
    """Print an nginx site for nginx in front of the master: nginx sends the image files
    (sendfile) straight from DATA_DIR/images, the master keeps the boot timeline."""
    caps = load_settings()  # the master's body caps (env, config file), so nginx refuses first
    opts = nginx.NginxOptions(
        images_dir=str(datadir.DataDir(data_dir).images.absolute()),
        master=renamed(upstream, old_master, "nginx-config --master", "--upstream", UPSTREAM),
        listen=renamed(nginx_listen, old_listen, "nginx-config --listen", "--nginx-listen", "80"),
        server_name=server_name,
        max_body_bytes=caps.max_body_bytes,
        max_import_bytes=caps.max_import_bytes,
        direct=direct,
    )
    problems = nginx.check_options(opts)
    if problems:
        raise SpecError("nginx-config: " + "; ".join(problems))
    typer.echo(nginx.render_nginx_config(opts), nl=False)

"""The stages after squashfs, which judge and record the result: the size and RAM guards,
the SBOM, metadata.yaml, and the commit into the store (one atomic rename).

They take pipeline.BuildContext, whose fields the earlier stages filled in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from livestrap import __version__
from livestrap.builder import aptlists, coverage, guards, sbom
from livestrap.errors import BuildError
from livestrap.store.coverage import DriverCoverage
from livestrap.store.images import ImageStore
from livestrap.store.manifest import (
    METADATA,
    SBOM,
    ImageMetadata,
    describe_artifacts,
    dump_metadata,
)

if TYPE_CHECKING:
    from livestrap.builder.pipeline import BuildContext


def stage_guards(ctx: BuildContext) -> None:
    """Hold the squashfs size and the RAM a node needs to the spec's limits (guards.py);
    over either, fail naming where the bytes are: nothing is committed."""
    listing = ctx.query(["lsinitramfs", "-l", str(ctx.out / "initrd.img")], "guards")
    ram = guards.measure(ctx.out, listing)
    ctx.boot_ram_mb = ram.mib
    ctx.log.write(ram.describe())
    problems = guards.over_limits(ram, ctx.spec.max_image_mb, ctx.spec.min_boot_ram_mb)
    if problems:
        admindir = f"--admindir={ctx.rootfs / 'var/lib/dpkg'}"
        sizes = ctx.query(
            ["dpkg-query", admindir, "-W", "-f=${Installed-Size}\t${Package}\n"], "guards"
        )
        trees = guards.module_tree_sizes(ctx.rootfs, ctx.kernel_version)
        message = guards.failure_message(problems, guards.package_sizes(sizes), trees)
        raise BuildError("guards", message)


def stage_sbom(ctx: BuildContext) -> None:
    """sbom.cdx.json into the image dir, so stage_metadata checksums it like the rest."""
    admin = f"--admindir={ctx.rootfs / 'var/lib/dpkg'}"
    lines = ctx.query(["dpkg-query", admin, "-W", aptlists.DPKG_QUERY_FORMAT], "sbom")
    packages = aptlists.installed_packages(lines, ctx.archives)
    unknown = sorted(p.name for p in packages if p.archive is None)
    if unknown:
        ctx.log.write(f"sbom: no archive found for {len(unknown)}: {', '.join(unknown[:20])}")
    subject = sbom.Subject(
        ctx.spec.label, ctx.spec.distro, ctx.spec.suite, ctx.kernel_version, __version__
    )
    text = sbom.render_sbom(subject, packages, ctx.source_date_epoch)
    (ctx.out / SBOM).write_text(text)


def stage_metadata(ctx: BuildContext) -> None:
    """Record the effective spec, installed packages and artifact checksums."""
    out = ctx.query(
        [
            "dpkg-query",
            f"--admindir={ctx.rootfs / 'var/lib/dpkg'}",
            "-W",
            "-f=${Package}\t${Version}\t${db:Status-Abbrev}\n",
        ],
        "metadata",
    )
    ctx.packages = {
        name: version
        for name, version, status in (line.split("\t") for line in out if line.count("\t") == 2)
        if status.startswith("ii")
    }
    driver_coverage = _driver_coverage(ctx)
    created = datetime.now(UTC).replace(microsecond=0)
    ctx.image_id = _new_image_id(ctx.store, ctx.spec.label, created)
    meta = ImageMetadata(
        id=ctx.image_id,
        label=ctx.spec.label,
        created=created,
        builder=f"livestrap {__version__}",
        distro=ctx.spec.distro,
        suite=ctx.spec.suite,
        arch=ctx.spec.arch,
        spec=ctx.spec.model_dump(mode="json"),
        spec_sha256=ctx.spec.sha256(),
        kernel_version=ctx.kernel_version,
        kernel_cmdline=ctx.spec.kernel_options,
        inputs_sha256=ctx.inputs_sha256,
        boot_ram_mb=ctx.boot_ram_mb,
        source_date_epoch=ctx.source_date_epoch,
        base_tree=ctx.base_tree,
        agent_version=ctx.packages.get("livestrap-agent"),
        firmware_packages=_firmware_packages(ctx),
        packages=dict(sorted(ctx.packages.items())),
        artifacts=describe_artifacts(ctx.out),
        driver_coverage=driver_coverage,
    )
    (ctx.out / METADATA).write_text(dump_metadata(meta))


def _driver_coverage(ctx: BuildContext) -> DriverCoverage | None:
    """The PCI coverage of the tree squashfs was made from (still there until commit);
    logged as one summary line. None (logged) when the tree has no modules.alias."""
    base = coverage.module_dir(ctx.rootfs, ctx.kernel_version)
    if not (base / "modules.alias").is_file():
        ctx.log.write(f"drivers: no {base.name}/modules.alias: PCI coverage not recorded")
        return None
    record, problems = coverage.read_coverage(ctx.rootfs, ctx.kernel_version)
    for problem in problems[:20]:
        ctx.log.write(f"drivers: {problem}")
    ctx.log.write(f"drivers: {coverage.summary_line(record)}")
    return record


def _firmware_packages(ctx: BuildContext) -> dict[str, str] | None:
    """The spec's firmware packages -> installed version; None when it names none."""
    wanted = ctx.spec.firmware_packages()
    if not wanted:
        return None
    return {p: ctx.packages[p] for p in wanted if p in ctx.packages}


def stage_commit(ctx: BuildContext) -> None:
    ctx.store.commit(ctx.out, ctx.image_id)
    ctx.built = ctx.store.get(ctx.image_id)


def _new_image_id(store: ImageStore, label: str, created: datetime) -> str:
    base = f"{label}-{created:%Y%m%d-%H%M%S}"
    image_id, n = base, 1
    existing = {info.id for info in store.list()}
    while image_id in existing or (store.images_dir / image_id).exists():
        n += 1
        image_id = f"{base}-{n}"
    return image_id

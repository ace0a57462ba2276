"""The image's SBOM: CycloneDX 1.5 JSON, one component per installed package.

A pure function of the packages and the archives they came from, so the same image
gives the same bytes: no wall clock (the timestamp is SOURCE_DATE_EPOCH, or none), the
components sorted, and the serial number a name-based UUID of the document's content.
Package names and versions are data: they only ever become JSON strings and
percent-encoded purl parts, never a path.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

SPEC_VERSION = "1.5"
PROP = "livestrap:"  # prefix of our own property names (CycloneDX's namespace rule)
SERIAL_NAMESPACE = uuid.UUID("6f0c1b8e-5d0a-4c3e-9a57-2b1f4f9d7e10")  # livestrap SBOMs


@dataclass(frozen=True, order=True)
class Archive:
    """The APT source that provided a package: its sources entry and Release fields."""

    uri: str
    suite: str
    component: str
    origin: str | None = None
    label: str | None = None


@dataclass(frozen=True, order=True)
class Package:
    """One installed package, as dpkg-query tells it (source: ${source:Package})."""

    name: str
    version: str
    arch: str
    source: str
    source_version: str
    archive: Archive | None = None


@dataclass(frozen=True)
class Subject:
    """The image the SBOM describes (never its id: that holds the build time)."""

    label: str
    distro: str
    suite: str
    kernel_version: str
    builder_version: str


def purl_part(text: str) -> str:
    """Percent-encode one purl segment: ':' as %3A, '+' as %2B, '/' as %2F; '~' stays."""
    return quote(text, safe=".-_~")


def purl(distro: str, pkg: Package, suite: str) -> str:
    """pkg:deb/<distro>/<name>@<version>?arch=<arch>&distro=<suite> (the purl spec's deb type)."""
    return (
        f"pkg:deb/{purl_part(distro)}/{purl_part(pkg.name)}@{purl_part(pkg.version)}"
        f"?arch={purl_part(pkg.arch)}&distro={purl_part(suite)}"
    )


def _properties(pkg: Package) -> list[dict[str, str]]:
    props = {
        "source": pkg.source,
        "source_version": pkg.source_version,
    }
    if pkg.archive is not None:
        a = pkg.archive
        props |= {"archive:uri": a.uri, "archive:suite": a.suite, "archive:component": a.component}
        props |= {f"archive:{k}": v for k, v in (("origin", a.origin), ("label", a.label)) if v}
    return [{"name": PROP + k, "value": v} for k, v in props.items()]


def _component(distro: str, suite: str, pkg: Package) -> dict[str, Any]:
    ref = purl(distro, pkg, suite)
    return {
        "type": "application",
        "bom-ref": ref,
        "name": pkg.name,
        "version": pkg.version,
        "purl": ref,
        "properties": _properties(pkg),
    }


def _timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_sbom(subject: Subject, packages: list[Package], source_date_epoch: int | None) -> str:
    """The SBOM's text: same inputs, same bytes."""
    metadata: dict[str, Any] = {}
    if source_date_epoch is not None:
        metadata["timestamp"] = _timestamp(source_date_epoch)
    metadata["tools"] = {
        "components": [
            {"type": "application", "name": "livestrap", "version": subject.builder_version}
        ]
    }
    metadata["component"] = {
        "type": "operating-system",
        "name": subject.label,
        "version": subject.kernel_version,
        "properties": [
            {"name": PROP + "distro", "value": subject.distro},
            {"name": PROP + "suite", "value": subject.suite},
        ],
    }
    body: dict[str, Any] = {
        "metadata": metadata,
        "components": [
            _component(subject.distro, subject.suite, p)
            for p in sorted(packages, key=lambda p: (p.name, p.arch, p.version))
        ],
    }
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(SERIAL_NAMESPACE, digest)}",
        "version": 1,
        **body,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"

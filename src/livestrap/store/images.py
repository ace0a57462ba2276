"""The image store on disk: `images/<id>/` directories, an `active` symlink, and `tmp/`.

Every change is a single rename (commit, delete) or a symlink swap (activate), so a
reader — the boot server, another CLI — sees either the old state or the new one, never
a half-written image or a missing `active` link. Activate, delete and commit also hold
one lock (`store.lock`, flock: across threads and processes), so a delete can never
remove the image an activate is pointing `active` at.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from livestrap.datadir import DataDir
from livestrap.errors import ImageNotFound, StoreError
from livestrap.ids import unique_match
from livestrap.store import tmpdirs
from livestrap.store.manifest import (
    IMAGE_FILES,
    IMAGE_ID_RE,
    KNOWN_FILES,
    MAX_SBOM_SIZE,
    SBOM,
    ImageMetadata,
    check_artifacts,
    check_image_id,
    read_metadata,
    verify_artifacts,
)


@dataclass(frozen=True)
class ImageInfo:
    """One line of `livestrap image list`: enough to choose an image without reading files."""

    id: str
    label: str
    created: datetime
    total_size: int
    active: bool
    problems: tuple[str, ...] = ()  # newer rules the image breaks (manifest.stored_problems)


@dataclass(frozen=True)
class PackageDiff:
    """Package changes from image a to image b, to review before activating b."""

    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _fsync(path: Path) -> None:
    """Flush a file or directory so a rename that follows cannot expose unwritten data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageStore:
    """Images under `<data_dir>/images`, one of them pointed to by `<data_dir>/active`."""

    def __init__(self, data_dir: Path) -> None:
        # Nothing is created here: read-only commands must not write to the data dir.
        self.data_dir = data_dir
        self.layout = DataDir(data_dir)
        self.images_dir = self.layout.images
        self.active_link = self.layout.active
        self.tmp_dir = self.layout.tmp
        self._link_top = self.images_dir.name  # `active` -> images/<id>, relative

    # -- reading -------------------------------------------------------------------------

    def list(self) -> builtins.list[ImageInfo]:
        """All committed images, oldest first; unreadable directories are skipped, not fatal.
        An image that breaks a rule newer than it is listed, with its `problems`."""
        if not self.images_dir.is_dir():
            return []
        active = self.active_id()
        infos = []
        for entry in self.images_dir.iterdir():
            if entry.is_symlink() or not entry.is_dir():
                continue
            try:
                check_image_id(entry.name)
                meta = read_metadata(entry, stored=True)
            except StoreError:
                continue
            if meta.id != entry.name:
                continue
            size, problems = meta.total_size(), tuple(meta.stored_problems)
            infos.append(
                ImageInfo(meta.id, meta.label, meta.created, size, meta.id == active, problems)
            )
        return sorted(infos, key=lambda i: (i.created, i.id))

    def resolve(self, ref: str) -> str:
        """The id of the image `ref` names: its full id or a unique prefix of it (as git takes
        commit prefixes). Several matches raise AmbiguousIdError listing them."""
        if self._is_image_dir(check_image_id(ref)):
            return ref
        names = [e.name for e in self.images_dir.iterdir()] if self.images_dir.is_dir() else []
        found = unique_match("image", ref, [n for n in names if self._is_image_dir(n)])
        if found is None:
            raise ImageNotFound(f"no image {ref}")
        return found

    def _is_image_dir(self, name: str) -> bool:
        entry = self.images_dir / name
        return bool(IMAGE_ID_RE.fullmatch(name)) and entry.is_dir() and not entry.is_symlink()

    def path(self, image_id: str) -> Path:
        """Directory of an existing image; refuses ids that are not plain names."""
        image_dir = self.images_dir / check_image_id(image_id)
        if image_dir.is_symlink() or not image_dir.is_dir():
            raise ImageNotFound(f"no image {image_id}")
        return image_dir

    def get(self, image_id: str) -> ImageMetadata:
        """Metadata of an existing image (`stored_problems`: newer rules it breaks)."""
        meta = read_metadata(self.path(image_id), stored=True)
        if meta.id != image_id:
            raise StoreError(f"image directory {image_id} holds metadata for {meta.id}")
        return meta

    def active_id(self) -> str | None:
        """Id the `active` symlink points to, or None when no image was ever activated."""
        try:
            target = os.readlink(self.active_link)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno == errno.EINVAL:
                raise StoreError(f"{self.active_link} is not a symlink") from None
            raise StoreError(f"cannot read {self.active_link}: {err.strerror}") from None
        parts = target.split("/")
        if len(parts) != 2 or parts[0] != self._link_top:
            raise StoreError(f"{self.active_link} points to unexpected target {target!r}")
        return check_image_id(parts[1])

    def verify(self, image_id: str) -> dict[str, str]:
        """Every artifact's checksum recomputed against metadata.yaml: name -> "ok",
        "mismatch" or "missing" (manifest.check_artifacts)."""
        return check_artifacts(self.path(image_id), self.get(image_id))

    def sbom(self, image_id: str) -> bytes:
        """The image's SBOM (CycloneDX JSON), checked against its recorded sha256."""
        meta = self.get(image_id)
        art = meta.artifacts.get(SBOM)
        if art is None:
            raise ImageNotFound(
                f"image {image_id} has no SBOM (built before livestrap wrote {SBOM}); "
                "rebuild it to get one"
            )
        if art.size > MAX_SBOM_SIZE:
            raise StoreError(f"image {image_id}: {SBOM} is larger than {MAX_SBOM_SIZE} bytes")
        path = self.path(image_id) / SBOM
        try:
            data = path.read_bytes() if path.stat().st_size == art.size else b""
        except OSError as err:
            raise StoreError(f"cannot read {path}: {err.strerror}") from None
        if len(data) != art.size or hashlib.sha256(data).hexdigest() != art.sha256:
            raise StoreError(f"image {image_id} is corrupt: {SBOM} does not match its sha256")
        return data

    def diff(self, a: str, b: str) -> PackageDiff:
        """What changes in the package set when going from image a to image b."""
        old, new = self.get(a).packages, self.get(b).packages
        return PackageDiff(
            added={n: v for n, v in sorted(new.items()) if n not in old},
            removed={n: v for n, v in sorted(old.items()) if n not in new},
            changed={n: (old[n], v) for n, v in sorted(new.items()) if n in old and old[n] != v},
        )

    # -- changing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store lock: what activate, delete and commit check stays true until
        their change is made. Held for milliseconds, so it blocks rather than fails."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.layout.store_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as err:
            raise StoreError(f"cannot lock the store in {self.data_dir}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def activate(self, image_id: str) -> None:
        """Point `active` at an image; readers never see the link missing (rename over it).
        An image the master cannot boot (stored under older rules its boot script breaks)
        is refused: every node would loop on the retry script."""
        with self.locked():
            self._activate(image_id)

    def _activate(self, image_id: str) -> None:
        blocking = self.get(image_id).boot_problems
        if blocking:
            raise StoreError(
                f"image {image_id} cannot be activated: the master cannot boot it "
                f"({'; '.join(blocking)}); build or import one that keeps today's rules"
            )
        tmp_link = self.active_link.with_name(f".{self.active_link.name}.{secrets.token_hex(8)}")
        try:
            os.symlink(f"{self._link_top}/{image_id}", tmp_link)
            os.replace(tmp_link, self.active_link)
        except OSError as err:
            tmp_link.unlink(missing_ok=True)
            raise StoreError(f"cannot activate {image_id}: {err.strerror}") from None
        _fsync(self.data_dir)

    def delete(self, image_id: str) -> None:
        """Remove an image; it disappears at once (rename into tmp) and is then erased."""
        with self.locked():
            image_dir = self.path(image_id)
            if image_id == self.active_id():
                raise StoreError(
                    f"image {image_id} is active; activate another image before deleting it"
                )
            trash = tmpdirs.make_dir(self.tmp_dir, "delete")
            try:
                os.rename(image_dir, trash / image_id)
            except OSError as err:
                trash.rmdir()
                raise StoreError(f"cannot delete {image_id}: {err.strerror}") from None
        # the image is already gone; whatever cannot be erased now, clean_stale_tmp will
        shutil.rmtree(trash, ignore_errors=True)

    def new_staging_dir(self, prefix: str) -> Path:
        """Empty private dir under tmp/, on the store's filesystem so commit can rename it;
        named by tmpdirs (`<prefix><pid>.<start>-...`) so a stale one is known as such."""
        return tmpdirs.make_dir(self.tmp_dir, prefix.rstrip("-"))

    def commit(self, staging_dir: Path, image_id: str) -> Path:
        """Publish a complete staging dir as images/<id> in one rename, after checking it.

        The staging dir must be on the store's filesystem (use new_staging_dir). It is
        checked to hold exactly the image files, metadata for this id, and artifacts that
        match their checksums, so nothing half-built or corrupt ever becomes an image.
        """
        check_image_id(image_id)
        dest = self.images_dir / image_id
        if os.path.lexists(dest):
            raise StoreError(f"image {image_id} already exists")
        meta = self._check_staging(staging_dir, image_id)
        for name in meta.files():
            _fsync(staging_dir / name)
        # mkdtemp makes the dir 0700; the boot server may run as another user.
        staging_dir.chmod(0o755)
        _fsync(staging_dir)
        with self.locked():
            self._publish(staging_dir, image_id, dest)
        return dest

    def _publish(self, staging_dir: Path, image_id: str, dest: Path) -> None:
        if os.path.lexists(dest):  # again under the lock: rename replaces an empty dir
            raise StoreError(f"image {image_id} already exists")
        self.images_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging_dir, dest)
        except OSError as err:
            if err.errno == errno.EXDEV:
                raise StoreError(
                    f"cannot commit {staging_dir}: not on the same filesystem as {self.images_dir}"
                ) from None
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise StoreError(f"image {image_id} already exists") from None
            raise StoreError(f"cannot commit {image_id}: {err.strerror}") from None
        _fsync(self.images_dir)

    def _check_staging(self, staging_dir: Path, image_id: str) -> ImageMetadata:
        try:
            names = {e.name for e in staging_dir.iterdir()}
        except OSError as err:
            raise StoreError(f"cannot read {staging_dir}: {err.strerror}") from None
        if not set(IMAGE_FILES) <= names <= set(KNOWN_FILES):
            self._refuse_files(staging_dir, names, set(IMAGE_FILES))
        for name in names:
            path = staging_dir / name
            if path.is_symlink() or not path.is_file():
                raise StoreError(f"{path} is not a regular file")
        meta = read_metadata(staging_dir)
        if meta.id != image_id:
            raise StoreError(f"staging metadata is for image {meta.id}, not {image_id}")
        if names != set(meta.files()):  # an optional file is there iff its checksum is
            self._refuse_files(staging_dir, names, set(meta.files()))
        bad = verify_artifacts(staging_dir, meta)
        if bad:
            raise StoreError(f"artifacts do not match metadata in {staging_dir}: {', '.join(bad)}")
        return meta

    @staticmethod
    def _refuse_files(staging_dir: Path, names: set[str], wanted: set[str]) -> None:
        extra, missing = sorted(names - wanted), sorted(wanted - names)
        raise StoreError(
            f"staging dir {staging_dir} is incomplete or has extra files "
            f"(missing: {', '.join(missing) or 'none'}; extra: {', '.join(extra) or 'none'})"
        )

    def clean_stale_tmp(
        self, kinds: tuple[str, ...] = tmpdirs.KINDS, *, eraser: tmpdirs.Eraser | None = None
    ) -> builtins.list[str]:
        """Erase what killed imports, uploads, exports and deletes left in tmp/ (entries
        whose owner process is gone): the sweep every caller uses (store.tmpdirs). Build
        trees only for the build lock's holder: kinds=(tmpdirs.BUILD,) with its eraser,
        which is then required (ValueError without: a plain rmtree could cross a mount)."""
        return tmpdirs.clean_stale(self.tmp_dir, kinds, eraser=eraser)

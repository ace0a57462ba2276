"""Image bundles: one tar of `<id>/<file>` to move an image between machines.

Import treats the archive as hostile: members are checked one by one and only the known
image file names are ever written, into a staging dir that becomes an image only through
ImageStore.commit. metadata.yaml must come first: its sizes are then enforced on every
member before a byte of it is written, against the import limit and the free space, and
the decompressed stream may not grow past them (store.limits, store.targuard). A refused
bundle leaves the store exactly as it was and tmp/ clean.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, cast

from livestrap.errors import ArchiveError, CommandError, StoreError
from livestrap.run import Pipe, pipe
from livestrap.store.images import ImageStore
from livestrap.store.limits import check_free_space, check_image_size, max_image_bytes
from livestrap.store.manifest import (
    CHUNK,
    IMAGE_FILES,
    KNOWN_FILES,
    MAX_METADATA_SIZE,
    MAX_SBOM_SIZE,
    METADATA,
    SBOM,
    ImageMetadata,
    check_image_id,
    parse_metadata,
)
from livestrap.store.targuard import TarGuard, warn_if_vulnerable

Compression = Literal["none", "gz", "xz", "zst"]

# headers, padding and the end-of-archive blocks around the files (tar writes in 10 KiB)
TAR_OVERHEAD = 64 << 10
MAX_TRAILING = 1 << 20  # what zstd may still produce after the tar's end-of-archive
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"
_SUFFIXES: dict[Compression, tuple[str, ...]] = {
    "gz": (".tar.gz", ".tgz"),
    "xz": (".tar.xz", ".txz"),
    "zst": (".tar.zst", ".tzst"),
    "none": (".tar",),
}
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def compression_for(dest: Path) -> Compression:
    """Compression implied by a bundle file name, so `export x.tar.zst` just works."""
    name = dest.name.lower()
    for comp, suffixes in _SUFFIXES.items():
        if name.endswith(suffixes):
            return comp
    raise ArchiveError(
        f"cannot tell compression from {dest.name}: use .tar, .tar.gz, .tar.xz or .tar.zst"
    )


# -- export ----------------------------------------------------------------------------


class _HashingReader:
    """Hashes what tarfile copies, so export notices a corrupt image without a second read."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha256.update(data)
        return data


@contextlib.contextmanager
def _compressor(raw: IO[bytes], compression: Compression) -> Iterator[IO[bytes]]:
    if compression == "none":
        yield raw
    elif compression == "gz":
        # mtime=0 and no file name in the header: the same image gives the same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            yield cast(IO[bytes], gz)
    elif compression == "xz":
        with lzma.LZMAFile(raw, "wb") as xz:
            yield xz
    else:
        with _zstd(["zstd", "-q", "-c"], None, raw) as proc:
            yield proc.stdin


@contextlib.contextmanager
def _zstd(argv: list[str], stdin: IO[bytes] | None, stdout: IO[bytes] | None) -> Iterator[Pipe]:
    """Run zstd as a filter; a non-zero exit becomes an ArchiveError with its message.
    What it still writes after the reader is done is drained, up to MAX_TRAILING bytes."""
    try:
        # the caller's env (ZSTD_CLEVEL, ZSTD_NBTHREADS); waits for zstd as long as it takes
        proc = pipe(argv, stage="bundle", stdin=stdin, stdout=stdout, inherit_env=True)
    except FileNotFoundError:
        raise ArchiveError("zstd is not installed; it is needed for .tar.zst") from None
    try:
        with proc:  # closes the pipes, waits and checks the exit status, whatever happens
            yield proc
            if stdout is None:
                _drain(proc.stdout)
    except CommandError as err:
        raise ArchiveError(f"zstd failed (exit {err.returncode}): {err.log_tail}") from None


def _drain(stream: IO[bytes]) -> None:
    """Read the tar trailer padding zstd may still write; refuse a bomb hidden after it."""
    left = MAX_TRAILING
    while chunk := stream.read(CHUNK):
        left -= len(chunk)
        if left < 0:  # leaving the pipe's block with this error kills zstd
            raise ArchiveError(f"bundle has more than {MAX_TRAILING} bytes after its tar archive")


def export_image(
    store: ImageStore, image_id: str, dest: Path, compression: Compression | None = None
) -> None:
    """Write images/<id> as a deterministic tar bundle; dest appears only when complete."""
    meta = store.get(image_id)
    src = store.path(image_id)
    comp = compression or compression_for(dest)
    mtime = max(0, int(meta.created.timestamp()))
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise StoreError(f"cannot write {dest}: {err.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with _compressor(raw, comp) as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                for name in meta.files():  # metadata first: its sizes bound the rest
                    _add_file(tar, src, image_id, name, meta, mtime)
            raw.flush()
            os.fsync(raw.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, dest)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {dest}: {err}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _add_file(
    tar: tarfile.TarFile, src: Path, image_id: str, name: str, meta: ImageMetadata, mtime: int
) -> None:
    path = src / name
    info = tarfile.TarInfo(f"{image_id}/{name}")
    info.size = path.stat().st_size
    info.mode, info.mtime = 0o644, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    art = meta.artifacts.get(name)
    if art and info.size != art.size:
        raise StoreError(f"image {image_id} is corrupt: {name} is not {art.size} bytes")
    with path.open("rb") as fh:
        reader = _HashingReader(fh)
        tar.addfile(info, cast(IO[bytes], reader))  # tarfile only calls read()
    if art and reader.sha256.hexdigest() != art.sha256:
        raise StoreError(f"image {image_id} is corrupt: {name} does not match its sha256")


# -- import ----------------------------------------------------------------------------


@contextlib.contextmanager
def _decompressed(bundle: Path) -> Iterator[IO[bytes]]:
    """The bundle's tar stream, whatever its compression (told apart by magic bytes)."""
    try:
        with bundle.open("rb") as probe:
            magic = probe.read(6)
        # a fresh handle: zstd reads its fd, which must be at offset 0, not past fh's buffer
        fh = bundle.open("rb")
    except OSError as err:
        raise ArchiveError(f"cannot open {bundle}: {err.strerror}") from None
    with fh:
        if magic.startswith(ZSTD_MAGIC):
            with _zstd(["zstd", "-d", "-q", "-c"], fh, None) as proc:
                yield proc.stdout
        elif magic.startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield cast(IO[bytes], gz)
        elif magic.startswith(XZ_MAGIC):
            with lzma.LZMAFile(fh, "rb") as xz:
                yield xz
        else:
            yield fh


def path_problem(name: str, max_depth: int = 0) -> str | None:
    """Why a member name is not a plain relative path (absolute, '..', '', '.', deeper
    than max_depth parts when given); None when it is one."""
    parts = name.split("/")
    if name.startswith("/"):
        return "absolute path"
    if ".." in parts:
        return "path traversal ('..')"
    if any(p in ("", ".") for p in parts) or 0 < max_depth < len(parts):
        return "non-canonical path"
    return None


def _read(data: IO[bytes], member: tarfile.TarInfo) -> bytes:
    try:
        return data.read(CHUNK)
    except _READ_ERRORS as err:
        raise ArchiveError(f"cannot read bundle member {member.name!r}: {err}") from None


class _Files:
    """What import has seen so far: the top dir and the files written to staging."""

    def __init__(self, store: ImageStore, staging: Path, guard: TarGuard, cap: int) -> None:
        self.store = store
        self.staging = staging
        self.guard = guard
        self.cap = cap
        self.top: str | None = None
        self.top_entry = False
        self.digests: dict[str, tuple[int, str]] = {}  # name -> (size, sha256)
        self.meta: ImageMetadata | None = None

    def check(self, member: tarfile.TarInfo) -> str | None:
        """The image file name this member provides, None for the top dir; refuse the rest."""
        name = member.name

        def refuse(reason: str) -> ArchiveError:
            return ArchiveError(f"refusing bundle member {name!r}: {reason}")

        parts = name.split("/")
        problem = path_problem(name)
        if problem:
            raise refuse(problem)
        if member.issym():
            raise refuse(f"symlink (to {member.linkname!r})")
        if member.islnk():
            raise refuse(f"hardlink (to {member.linkname!r})")
        if member.ischr() or member.isblk():
            raise refuse("device file")
        if member.isfifo():
            raise refuse("fifo")
        if self.top is None:
            try:
                self.top = check_image_id(parts[0])
            except StoreError:
                raise refuse("top-level directory is not a valid image id") from None
            if os.path.lexists(self.store.images_dir / self.top):
                raise StoreError(f"image {self.top} already exists in the store")
        elif parts[0] != self.top:
            raise refuse(f"second top-level directory (first was {self.top!r})")
        if member.isdir():
            if len(parts) != 1:
                raise refuse("unexpected directory")
            if self.top_entry:
                raise refuse("duplicate member")
            self.top_entry = True
            return None
        if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
            raise refuse("unsupported member type")
        if len(parts) != 2:
            raise refuse(f"not of the form {self.top}/<file>")
        # from here on the name is our own constant, never the archive's string
        known = {n: n for n in KNOWN_FILES}.get(parts[1])
        if known is None:
            raise refuse("not an image file")
        if known in self.digests:
            raise refuse("duplicate member")
        if known == METADATA and member.size > MAX_METADATA_SIZE:
            raise refuse("metadata is too large")
        if known == SBOM and member.size > MAX_SBOM_SIZE:
            raise refuse(f"larger than {MAX_SBOM_SIZE} bytes")
        if known != METADATA and self.meta is None:
            raise refuse(f"{METADATA} must come first (its sizes bound what is written)")
        art = self.meta.artifacts.get(known) if self.meta else None
        if known != METADATA and art is None:  # an optional file the metadata does not list
            raise refuse(f"not listed in {METADATA}, so it cannot be checked")
        if art and member.size != art.size:
            raise refuse(f"size {member.size} does not match metadata ({art.size})")
        return known

    def write(self, known: str, member: tarfile.TarInfo, data: IO[bytes]) -> None:
        """Stream one member into staging/<known name>, hashing it on the way."""
        h, size = hashlib.sha256(), 0
        path = self.staging / known
        try:
            with path.open("xb") as out:
                while chunk := _read(data, member):
                    size += len(chunk)
                    if size > member.size:  # tarfile stops there; never rely on it alone
                        raise ArchiveError(f"bundle member {member.name!r} is too long")
                    h.update(chunk)
                    out.write(chunk)
        except OSError as err:  # reading errors were turned into ArchiveError by _read
            raise StoreError(f"cannot write {path}: {err.strerror}") from None
        if size != member.size:
            raise ArchiveError(f"bundle member {member.name!r} is truncated")
        self.digests[known] = (size, h.hexdigest())
        if known == METADATA:
            try:
                meta = parse_metadata(path.read_text(errors="replace"), member.name)
            except StoreError as err:
                raise ArchiveError(str(err)) from None
            if meta.id != self.top:
                raise ArchiveError(
                    f"metadata id {meta.id!r} does not match top-level directory {self.top!r}"
                )
            total = meta.total_size()
            check_image_size(total, self.cap)
            check_free_space(self.staging, total)
            # the rest of the stream: the declared files and their headers, no more
            self.guard.limit = min(self.guard.limit, self.guard.total + total + TAR_OVERHEAD)
            self.meta = meta

    def finish(self) -> ImageMetadata:
        """Refuse an incomplete bundle or one whose files do not match the metadata."""
        wanted = self.meta.files() if self.meta else IMAGE_FILES
        missing = [n for n in wanted if n not in self.digests]
        if missing or self.meta is None:
            raise ArchiveError(f"bundle is missing {', '.join(missing) or 'files'}")
        for name, art in self.meta.artifacts.items():
            size, sha = self.digests[name]
            where = f"bundle member '{self.top}/{name}'"
            if size != art.size:
                raise ArchiveError(f"{where}: size {size} does not match metadata ({art.size})")
            if sha != art.sha256:
                raise ArchiveError(f"{where}: sha256 does not match metadata")
        return self.meta


def import_image(store: ImageStore, bundle: Path, *, max_bytes: int | None = None) -> ImageMetadata:
    """Add the image in a bundle to the store, refusing anything unsafe or inconsistent.
    `max_bytes`: the largest image accepted (default: store.limits.max_image_bytes())."""
    cap = max_image_bytes() if max_bytes is None else max_bytes
    warn_if_vulnerable()
    store.clean_stale_tmp()  # what killed imports left: their owner is gone
    staging = store.new_staging_dir("import-")
    try:
        # leaving this block also checks zstd's exit status: the stream was complete
        with _decompressed(bundle) as stream:
            guard = TarGuard(stream, cap + MAX_METADATA_SIZE + TAR_OVERHEAD)
            files = _Files(store, staging, guard, cap)
            try:
                with tarfile.open(fileobj=cast(IO[bytes], guard), mode="r|") as tar:
                    for member in tar:
                        known = files.check(member)
                        if known is not None:
                            data = tar.extractfile(member)
                            assert data is not None  # regular files always have data
                            files.write(known, member, data)
            except _READ_ERRORS as err:
                raise ArchiveError(f"cannot read bundle {bundle}: {err}") from None
        meta = files.finish()
        store.commit(staging, meta.id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return meta


# the same compression and stream guards for the master's backups (master.backup)
compressor = _compressor
decompressed = _decompressed
READ_ERRORS = _READ_ERRORS

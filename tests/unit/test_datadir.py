"""livestrap.datadir: the data dir's layout is spelled once, and stays what is on disk.

The literal paths below are the layout of existing data dirs: a change here strands
what is stored in them. The scan checks that no other module of src/ joins those names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import livestrap
from livestrap.datadir import DataDir
from livestrap.master.config import MasterSettings
from livestrap.packaging.master_repo import MasterRepo
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit

ROOT = Path("/var/lib/livestrap")
LAYOUT = {
    "images": "images",
    "active": "active",
    "tmp": "tmp",
    "store_lock": "store.lock",
    "build_lock": "build.lock",
    "in_use_lock": "running.lock",
    "cache": "cache",
    "logs": "logs",
    "spec": "spec",
    "repo": "repo",
    "repo_lock": "repo.lock",
    "keys": "keys",
    "gnupg": "keys/gnupg",
    "admin_token": "admin.token",
    "discovery_token": "discovery.token",
    "db": "livestrap.db",
    "vms": "vms",
}
SRC = Path(livestrap.__file__).parent
# every name DataDir puts right under the data dir (what no other module may spell)
TOP_NAMES = {Path(rel).parts[0] for rel in LAYOUT.values()} | {
    "livestrap.db-wal",
    "livestrap.db-shm",
    "livestrap.db-journal",
}


@pytest.mark.parametrize(("attr", "rel"), sorted(LAYOUT.items()))
def test_every_path(attr: str, rel: str) -> None:
    assert getattr(DataDir(ROOT), attr) == ROOT / rel


def test_per_name_paths() -> None:
    layout = DataDir(ROOT)
    assert layout.build_log("20240501-120000") == ROOT / "logs/build-20240501-120000.log"
    assert layout.build_log("b-1") == ROOT / "logs/build-b-1.log"
    assert layout.vm("node1") == ROOT / "vms/node1"
    assert layout.db_files() == tuple(
        ROOT / n for n in ("livestrap.db", "livestrap.db-wal", "livestrap.db-shm",
                           "livestrap.db-journal")
    )  # fmt: skip


def test_modes_and_secrets() -> None:
    layout = DataDir(ROOT)
    assert layout.private_parts() == {
        ROOT / "keys": 0o700,
        ROOT / "tmp": 0o700,
        ROOT / "spec": 0o750,
        ROOT / "logs": 0o750,
    }
    assert layout.secret_dirs() == (ROOT / "keys", ROOT / "images", ROOT / "tmp")
    assert layout.secret_files() == (
        ROOT / "admin.token",
        ROOT / "discovery.token",
        *layout.db_files(),
    )


def test_users_take_their_paths_from_it(tmp_path: Path) -> None:
    layout = DataDir(tmp_path)
    store = ImageStore(tmp_path)
    assert (store.images_dir, store.active_link, store.tmp_dir) == (
        layout.images,
        layout.active,
        layout.tmp,
    )
    repo = MasterRepo(tmp_path)
    assert (repo.root, repo.gnupg_home) == (layout.repo, layout.gnupg)
    settings = MasterSettings(data_dir=tmp_path)
    assert settings.layout == layout
    assert settings.db_url == f"sqlite:///{tmp_path}/livestrap.db"
    assert (settings.spec_dir, settings.admin_token_file, settings.discovery_token_file) == (
        layout.spec,
        layout.admin_token,
        layout.discovery_token,
    )


def _leading_text(node: ast.expr) -> str | None:
    """The literal start of a path operand: a string, or an f-string's first piece."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
        return ""
    return None


def layout_spellings(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module joins a data-dir name (`x / "tmp"`, `x / f"build-{i}.log"`,
    `joinpath("keys")`), spells one of its file names ("admin.token") or keeps one in a
    module constant (`PARTS = {"keys": 0o700}`)."""
    found = []
    for node in ast.walk(tree):
        operands: list[ast.expr] = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            operands = [node.right]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            operands = (
                list(node.args) if node.func.attr in ("joinpath", "join", "with_name") else []
            )
        for operand in operands:
            text = _leading_text(operand)
            if text is None:
                continue
            log_name = isinstance(operand, ast.JoinedStr) and text.startswith("build-")
            if text.split("/")[0] in TOP_NAMES or log_name:
                found.append((node.lineno, ast.unparse(node)))
        if isinstance(node, ast.Constant) and node.value in TOP_NAMES and "." in node.value:
            found.append((node.lineno, repr(node.value)))
    for stmt in getattr(tree, "body", []):  # module constants naming them (IMAGES = "images")
        literal = ast.Constant | ast.Tuple | ast.List | ast.Set | ast.Dict
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and isinstance(stmt.value, literal):
            names = {n.value for n in ast.walk(stmt.value) if isinstance(n, ast.Constant)}
            if names & TOP_NAMES:
                found.append((stmt.lineno, ast.unparse(stmt)))
    return found


def test_scan_finds_the_spellings() -> None:
    code = """
a = data_dir / "tmp"
b = root / "keys/gnupg"
c = data_dir / f"build-{i}.log"
d = base.joinpath("vms", name), os.path.join(data_dir, "tmp")
e = open("discovery.token")
f = f"sqlite:///{data_dir / 'livestrap.db'}"
PARTS = {"keys": 0o700}
ok = rootfs / "var/tmp", image / "root.squashfs", x / f"disk{i}.raw", "images are here"
router = make(tags=["images"], stage="repo")
"""
    assert sorted({line for line, _ in layout_spellings(ast.parse(code))}) == [2, 3, 4, 5, 6, 7, 8]


def test_no_module_but_datadir_spells_the_layout() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "datadir.py":
            continue
        for line, text in layout_spellings(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(SRC)}:{line}: {text}")
    assert offenders == [], "take these paths from livestrap.datadir.DataDir"

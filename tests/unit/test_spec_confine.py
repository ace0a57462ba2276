"""Spec paths: the master's secrets are refused from any caller; API specs are confined to
<data-dir>/spec, their file:// URLs to the allowed roots (livestrap.specpaths)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from livestrap.cli.spec_cmd import effective_spec
from livestrap.errors import SpecError
from livestrap.master.config import MasterSettings
from livestrap.master.services.settings import api_rules, check_spec, parse_api_spec
from livestrap.spec import load_spec, parse_spec
from livestrap.specpaths import PathRules, check_local_url

pytestmark = [pytest.mark.unit, pytest.mark.security]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY = FIXTURES / "keys" / "archive-test.asc"
PORTABLE = {"mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}


@pytest.fixture
def cfg(tmp_path: Path) -> MasterSettings:
    """A data dir laid out as the master makes it (tokens, keys, images, tmp, database)."""
    data = tmp_path / "data"
    for sub in ("spec/overlay", "keys/gnupg", "images/lab-1", "tmp", "repo", "cache"):
        (data / sub).mkdir(parents=True)
    for name in ("admin.token", "discovery.token", "livestrap.db", "images/lab-1/vmlinuz"):
        (data / name).write_text("secret\n")
    shutil.copy(KEY, data / "spec/archive.asc")
    (data / "spec/site.sh").write_text("#!/bin/sh\n")
    return MasterSettings(data_dir=data)


def api_error(cfg: MasterSettings, **fields: Any) -> str:
    with pytest.raises(SpecError) as err:
        parse_api_spec({**PORTABLE, **fields}, cfg, "settings")
    return str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("extra_dirs", [".."]),
        ("extra_dirs", ["../keys"]),
        ("scripts", ["../admin.token"]),
        ("scripts", ["/etc/shadow"]),
        ("scripts", ["../images/lab-1/vmlinuz"]),
        ("mirror_key", "../discovery.token"),
        ("mirror_key", "/etc/shadow"),
    ],
)
def test_api_specs_are_confined_to_the_spec_folder(
    cfg: MasterSettings, field: str, value: Any
) -> None:
    msg = api_error(cfg, **{field: value})
    assert f"\n  {field}" in msg and "not allowed" in msg, msg


def test_the_issue_examples_through_the_api(cfg: MasterSettings) -> None:
    """What the review sent: each is refused with the field named, none of them stored."""
    data = cfg.data_dir
    for body in (
        {"extra_dirs": [str(data)]},
        {"extra_dirs": [str(data / "keys")]},
        {"scripts": [str(data / "admin.token")]},
        {"scripts": [str(data / "images/lab-1/vmlinuz")]},
    ):
        assert "not allowed" in api_error(cfg, **body)
    msg = api_error(cfg, mirror="file:///etc", mirror_key="/etc/shadow")
    assert "\n  mirror: not allowed: file:// path /etc is not under an allowed root" in msg
    assert "\n  mirror_key: not allowed: /etc/shadow is outside" in msg


def test_relative_paths_are_taken_from_the_spec_folder(cfg: MasterSettings) -> None:
    spec, _ = check_spec(
        {**PORTABLE, "extra_dirs": ["overlay"], "scripts": ["site.sh"]}, cfg, "settings"
    )
    assert spec.extra_dirs == [cfg.spec_dir / "overlay"]
    assert spec.scripts == [cfg.spec_dir / "site.sh"]
    assert spec.mirror_key == cfg.spec_dir / "archive.asc"
    assert parse_api_spec({**PORTABLE, "extra_dirs": ["."]}, cfg, "s").extra_dirs == [cfg.spec_dir]


def test_a_link_out_of_the_spec_folder_is_followed_and_refused(cfg: MasterSettings) -> None:
    (cfg.spec_dir / "sneaky").symlink_to(cfg.data_dir / "keys")
    (cfg.spec_dir / "shadow").symlink_to("/etc/shadow")
    assert "keys/" in api_error(cfg, extra_dirs=["sneaky"])
    assert "outside" in api_error(cfg, scripts=["shadow"])


def test_refusal_comes_before_the_existence_check(cfg: MasterSettings) -> None:
    """No probing which files exist outside the folder."""
    msg = api_error(cfg, scripts=["/nonexistent/x"])
    assert "not allowed" in msg and "does not exist" not in msg


def test_file_urls_only_under_the_allowed_roots(cfg: MasterSettings, tmp_path: Path) -> None:
    repo = {"name": "local", "suite": "s", "trusted": True}
    mirror_root = tmp_path / "mirror"
    assert "not under an allowed root" in api_error(cfg, mirror=f"file://{mirror_root}")
    assert "not under an allowed root" in api_error(
        cfg, repos=[{**repo, "uri": f"copy://{mirror_root}/x"}]
    )
    allowed = MasterSettings(data_dir=cfg.data_dir, file_mirror_roots=(mirror_root,))
    spec = parse_api_spec(
        {
            **PORTABLE,
            "mirror": f"file://{mirror_root}/debian",
            "repos": [{**repo, "uri": f"file://{cfg.spec_dir}/repo"}],
        },
        allowed,
        "settings",
    )
    assert spec.mirror == f"file://{mirror_root}/debian"
    assert "not under an allowed root" in api_error(cfg, mirror=f"file://{mirror_root}/../etc")
    rules = api_rules(allowed)
    with pytest.raises(ValueError, match="keys/"):
        check_local_url(f"file://{cfg.data_dir}/keys", PathRules(cfg.data_dir))
    assert rules.file_roots == (cfg.spec_dir, mirror_root)


def test_the_build_worker_refuses_secrets_but_takes_the_master_repo(cfg: MasterSettings) -> None:
    """The worker re-reads the stored effective spec with the master's rules: its own
    copy:// repo in <data-dir>/repo and host keyrings pass, the secrets do not."""
    from livestrap.master.services.settings import master_rules

    rules = master_rules(cfg)
    (cfg.data_dir / "repo/key.asc").write_text("k")
    repo = {"name": "livestrap", "uri": f"copy://{cfg.data_dir}/repo", "suite": "livestrap",
            "key": str(cfg.data_dir / "repo/key.asc")}  # fmt: skip
    spec = parse_spec({"mirror_key": str(KEY), "repos": [repo]}, rules=rules)
    assert spec.repos[0].key == cfg.data_dir / "repo/key.asc"
    with pytest.raises(SpecError, match=r"livestrap\.db"):
        parse_spec({"scripts": [str(cfg.data_dir / "livestrap.db")]}, rules=rules)


# -- any caller: the CLI ------------------------------------------------------------------


def write_spec(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(f"mirror: http://deb.example/debian\nmirror_key: {KEY}\n{body}")
    return path


def test_cli_specs_in_a_home_dir_keep_working(tmp_path: Path, cfg: MasterSettings) -> None:
    """The README's layout: overlay/ and scripts/site.sh beside the spec."""
    home = tmp_path / "home/ops"
    (home / "overlay/etc").mkdir(parents=True)
    (home / "scripts").mkdir()
    (home / "scripts/site.sh").write_text("#!/bin/sh\n")
    path = write_spec(home, "extra_dirs: [overlay]\nscripts: [scripts/site.sh]\n")
    spec = effective_spec(path, cfg.data_dir)
    assert spec.extra_dirs == [(home / "overlay").resolve()]
    assert spec.scripts == [(home / "scripts/site.sh").resolve()]


@pytest.mark.parametrize(
    "body",
    [
        "extra_dirs: [/]\n",
        "extra_dirs: [DATA]\n",
        "extra_dirs: [DATA/..]\n",
        "extra_dirs: [DATA/keys]\n",
        "extra_dirs: [DATA/keys/gnupg]\n",
        "extra_dirs: [DATA/images]\n",
        "extra_dirs: [DATA/tmp]\n",
        "scripts: [DATA/admin.token]\n",
        "scripts: [DATA/discovery.token]\n",
        "scripts: [DATA/livestrap.db]\n",
        "scripts: [DATA/images/lab-1/vmlinuz]\n",
        "mirror: file://DATA/keys\n",
    ],
)
def test_cli_specs_may_not_name_the_masters_secrets(
    tmp_path: Path, cfg: MasterSettings, body: str
) -> None:
    path = write_spec(tmp_path / "ops", body.replace("DATA", str(cfg.data_dir)))
    with pytest.raises(SpecError, match="not allowed"):
        effective_spec(path, cfg.data_dir)


def test_cli_spec_check_uses_livestrap_data_dir(
    tmp_path: Path, cfg: MasterSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(tmp_path / "ops", f"extra_dirs: [{cfg.data_dir / 'keys'}]\n")
    monkeypatch.setenv("LIVESTRAP_DATA_DIR", str(cfg.data_dir))
    with pytest.raises(SpecError, match="keys/"):
        effective_spec(path)
    assert load_spec(path).extra_dirs == [cfg.data_dir / "keys"]  # no rules: only / refused
    with pytest.raises(SpecError, match="root directory"):
        load_spec(write_spec(tmp_path / "root", "extra_dirs: [/]\n"))


def test_a_sqlite_database_elsewhere_is_protected_too(tmp_path: Path) -> None:
    from livestrap.master.services.settings import master_rules

    db = tmp_path / "elsewhere/master.db"
    db.parent.mkdir()
    db.write_text("x")
    cfg = MasterSettings(data_dir=tmp_path / "data", database_url=f"sqlite:///{db}")
    with pytest.raises(SpecError, match=r"master\.db"):
        parse_spec({"scripts": [str(db)]}, rules=master_rules(cfg))


def test_an_overlay_with_absolute_links_inside_is_fine(cfg: MasterSettings) -> None:
    """Links inside a named folder are copied as links, never followed: not refused. A
    path that is, or goes through, a link out of spec/ still is, chains included."""
    etc = cfg.spec_dir / "overlay/etc"
    etc.mkdir()
    (etc / "localtime").symlink_to("/usr/share/zoneinfo/UTC")
    (etc / "up").symlink_to("../..")  # overlay/etc/up -> spec/
    (etc / "up2").symlink_to("up/..")  # -> data dir
    (etc / "out").symlink_to("/etc")
    assert parse_api_spec({**PORTABLE, "extra_dirs": ["overlay"]}, cfg, "s").extra_dirs == [
        cfg.spec_dir / "overlay"
    ]
    assert "outside" in api_error(cfg, scripts=["overlay/etc/localtime"])
    assert "outside" in api_error(cfg, extra_dirs=["overlay/etc/out"])
    assert "data dir" in api_error(cfg, extra_dirs=["overlay/etc/up2"])
    assert "keys/" in api_error(cfg, extra_dirs=["overlay/etc/up2/keys"])


def test_build_rules_bind_what_names_spec_but_take_the_masters_additions(
    cfg: MasterSettings, tmp_path: Path
) -> None:
    """The worker's re-check of a queued API build: its paths in spec/ must still resolve
    there (an upload may have swapped a folder for a link since); the master's repo and
    the host keyring, outside spec/, pass with the master's rules."""
    from livestrap.master.services.settings import build_rules, master_rules

    rules = build_rules(cfg)
    (cfg.data_dir / "repo/key.asc").write_text("k")
    repo = {"name": "livestrap", "uri": f"copy://{cfg.data_dir}/repo", "suite": "livestrap",
            "key": str(cfg.data_dir / "repo/key.asc")}  # fmt: skip
    spec = {"mirror_key": str(KEY), "repos": [repo], "extra_dirs": [str(cfg.spec_dir / "overlay")]}
    assert parse_spec(spec, rules=rules).repos[0].key == cfg.data_dir / "repo/key.asc"
    outside = tmp_path / "outside"
    outside.mkdir()
    (cfg.spec_dir / "overlay").rmdir()
    (cfg.spec_dir / "overlay").symlink_to(outside)
    (cfg.spec_dir / "mirror").symlink_to(outside)
    with pytest.raises(SpecError, match="outside"):
        parse_spec(spec, rules=rules)
    assert parse_spec(spec, rules=master_rules(cfg)).extra_dirs == [outside]  # the old hole
    with pytest.raises(SpecError, match="not under an allowed root"):
        parse_spec({"mirror_key": str(KEY), "mirror": f"file://{cfg.spec_dir}/mirror"}, rules=rules)
    with pytest.raises(SpecError, match=r"livestrap\.db"):
        parse_spec({"scripts": [str(cfg.data_dir / "livestrap.db")]}, rules=rules)


def test_a_home_dir_of_no_user_is_a_field_error(cfg: MasterSettings) -> None:
    """`~no-such-user/x` made pathlib raise RuntimeError: a 500 the API fuzz test found."""
    msg = api_error(cfg, mirror_key="~livestrap-no-such-user/archive.asc")
    assert "\n  mirror_key" in msg and "no such home directory" in msg, msg

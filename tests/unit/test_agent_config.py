"""Agent settings: kernel command line parsing, config file overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.agent.config import (
    AgentConfig,
    ConfigError,
    build_config,
    load_config,
    normalize_mac,
    parse_cmdline,
    parse_config_text,
)

pytestmark = pytest.mark.unit

IPXE_CMDLINE = (
    "BOOT_IMAGE=vmlinuz initrd=initrd.img boot=live fetch=http://10.0.0.1:8080/img/squashfs "
    "ip=dhcp console=tty0 console=ttyS0,115200n8 livestrap.url=http://10.0.0.1:8080 "
    "livestrap.token=s3cr3t-T0ken livestrap.image=bookworm-20240601-ab12cd "
    "BOOTIF=01-52-54-00-12-34-56 quiet\n"
)


def test_cmdline_picks_the_agent_keys_only() -> None:
    assert parse_cmdline(IPXE_CMDLINE) == {
        "url": "http://10.0.0.1:8080",
        "token": "s3cr3t-T0ken",
        "image": "bookworm-20240601-ab12cd",
        "bootif": "01-52-54-00-12-34-56",
    }


def test_cmdline_quoted_values_and_unbalanced_quotes() -> None:
    assert parse_cmdline('a "livestrap.image=my image" b')["image"] == "my image"
    # an unbalanced quote elsewhere must not lose the other settings
    assert parse_cmdline('x="oops livestrap.url=http://m') == {"url": "http://m"}


@pytest.mark.parametrize(
    ("raw", "mac"),
    [
        ("01-aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        ("01-AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
        ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        ("06-aa-bb-cc-dd-ee-ff", None),  # not Ethernet
        ("01-aa-bb-cc", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_normalize_mac(raw: str, mac: str | None) -> None:
    assert normalize_mac(raw) == mac


def test_build_config_from_cmdline() -> None:
    config = build_config(parse_cmdline(IPXE_CMDLINE))
    assert config == AgentConfig(
        url="http://10.0.0.1:8080",
        token="s3cr3t-T0ken",
        image="bookworm-20240601-ab12cd",
        boot_mac="52:54:00:12:34:56",
        heartbeat_s=60,
    )


def test_config_file_plain_key_value_and_ini() -> None:
    plain = "# baked into the image\nurl = http://master:8080\nheartbeat_s=15\ntoken='abc'\n"
    assert parse_config_text(plain) == {
        "url": "http://master:8080",
        "heartbeat_s": "15",
        "token": "abc",
    }
    ini = "[other]\nurl=http://wrong\n[agent]\nurl=http://right\n"
    assert parse_config_text(ini) == {"url": "http://right"}
    assert parse_config_text("") == {}
    with pytest.raises(ConfigError, match="not valid"):
        parse_config_text("[agent]\nnot a setting\n")


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_bad_heartbeat_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="heartbeat_s"):
        build_config({"url": "http://m", "heartbeat_s": value})


def test_missing_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"livestrap\.url=.*kernel command line"):
        AgentConfig().require_url()
    assert AgentConfig(url="http://m").require_url() == "http://m"


def test_load_config_file_overrides_cmdline(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(IPXE_CMDLINE)
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "url=http://override:9000\nbootif=aa:bb:cc:dd:ee:ff\nheartbeat_s=5\ntokn=x\ntoken=\n"
    )
    config, warnings = load_config(cmdline, conf)
    assert config.url == "http://override:9000"
    assert config.token == "s3cr3t-T0ken"  # not overridden
    assert config.boot_mac == "aa:bb:cc:dd:ee:ff"
    assert config.heartbeat_s == 5
    assert warnings == [f"{conf}: unknown key 'tokn' ignored"]


def test_load_config_missing_sources_and_bad_bootif(tmp_path: Path) -> None:
    config, warnings = load_config(tmp_path / "no-cmdline", tmp_path / "no-conf")
    assert config == AgentConfig()
    assert "cannot read" in warnings[0]
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("livestrap.url=http://m BOOTIF=nonsense")
    config, warnings = load_config(cmdline, tmp_path / "no-conf")
    assert config.boot_mac is None
    assert warnings == ["BOOTIF 'nonsense' is not a MAC address; PXE NIC unknown"]


def test_unreadable_config_file_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.mkdir()  # reading a directory fails even as root
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "no-cmdline", conf)

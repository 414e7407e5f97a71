import logging

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from vectorfair.api import create_app
from vectorfair.cli import app as cli
from vectorfair.plugins import configure_demos, discover
from vectorfair.settings import ConfigError, load_settings

from .conftest import write_config


def test_entry_point_plugin_is_discovered(settings):
    found = discover(settings)
    assert [p.name for p in found.plugins] == ["fake"]
    assert found.plugins[0].demos == ["fake"] and found.plugins[0].version == "0.1"
    assert set(found.demo_classes) == {"fake"}


def test_allowlist_restricts_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("VECTORFAIR_PLUGINS", "broken")
    settings = load_settings(write_config(tmp_path))
    assert [p.name for p in discover(settings).plugins] == ["broken"]


def test_broken_plugins_are_reported_and_the_rest_start(tmp_path, caplog):
    settings = load_settings(
        write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n", plugins="fake,broken,badcontract")
    )
    caplog.set_level(logging.ERROR, "vectorfair.plugins")
    with TestClient(create_app(settings)) as client:
        plugins = {p["name"]: p for p in client.get("/api/plugins").json()}
        assert plugins["fake"]["ok"] and plugins["fake"]["demos"] == ["fake"]
        assert not plugins["broken"]["ok"] and "a_module_that_is_not_installed" in plugins["broken"]["error"]
        assert not plugins["badcontract"]["ok"] and "not a vectorfair.Demo" in plugins["badcontract"]["error"]
        assert [d["name"] for d in client.get("/api/demos").json()] == ["fake"]
        assert client.post("/api/demos/fake/search", json={"query": "x"}).status_code == 200
    logged = caplog.text
    assert "broken" in logged and "badcontract" in logged

    result = CliRunner().invoke(cli, ["plugins", "--config", str(settings.config_file), "--json"])
    assert result.exit_code == 0, result.output
    assert '"broken"' in result.output and "a_module_that_is_not_installed" in result.output


def test_config_enabling_a_missing_demo_names_the_installed_ones(tmp_path):
    settings = load_settings(write_config(tmp_path, "[demos.image_search]\nenabled = true\n"))
    with pytest.raises(ConfigError) as raised:
        configure_demos(settings, discover(settings))
    assert "image_search" in str(raised.value) and "installed demos: fake" in str(raised.value)
    result = CliRunner().invoke(cli, ["demos", "--config", str(settings.config_file)])
    assert result.exit_code == 2 and "installed demos: fake" in result.output


def test_disabled_section_for_a_missing_demo_is_fine(tmp_path):
    settings = load_settings(write_config(tmp_path, "[demos.image_search]\nenabled = false\n"))
    assert set(configure_demos(settings, discover(settings))) == {"fake"}


def test_bad_demo_option_names_the_key(tmp_path):
    settings = load_settings(write_config(tmp_path, "[demos.fake]\nsampel_size = 3\n"))
    with pytest.raises(ConfigError, match=r"\[demos\.fake\] sampel_size"):
        configure_demos(settings, discover(settings))
    settings = load_settings(write_config(tmp_path, '[demos.fake]\ndim = "wide"\n'))
    with pytest.raises(ConfigError, match=r"\[demos\.fake\] dim"):
        create_app(settings)


def test_demo_can_be_disabled_by_config_or_environment(tmp_path, monkeypatch):
    settings = load_settings(write_config(tmp_path, "[demos.fake]\nenabled = false\n"))
    assert configure_demos(settings, discover(settings)) == {}
    monkeypatch.setenv("VECTORFAIR_DEMOS__FAKE__ENABLED", "false")
    settings = load_settings(write_config(tmp_path))
    assert configure_demos(settings, discover(settings)) == {}


def test_unlisted_demos_can_be_off_by_default(tmp_path):
    config = write_config(tmp_path)
    config.write_text("enable_unlisted_demos = false\n" + config.read_text())
    assert configure_demos(load_settings(config), discover(load_settings(config))) == {}

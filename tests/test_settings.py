import pytest

from vectorfair.settings import ConfigError, load_settings


def test_toml_file_is_read(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[milvus]\nuri = "./x.db"\n[demos.fake]\nenabled = false\nsample_size = 3\n')
    settings = load_settings(config)
    assert settings.milvus.uri == "./x.db"
    assert settings.demos == {"fake": {"enabled": False, "sample_size": 3}}
    assert settings.config_file == config


def test_environment_overrides_file_nested(tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('[milvus]\nuri = "./x.db"\ntimeout = 5\n[demos.fake]\nsample_size = 3\n')
    monkeypatch.setenv("VECTORFAIR_MILVUS__URI", "http://127.0.0.1:19530")
    monkeypatch.setenv("VECTORFAIR_DEMOS__FAKE__SAMPLE_SIZE", "7")
    settings = load_settings(config)
    assert settings.milvus.uri == "http://127.0.0.1:19530"
    assert settings.milvus.timeout == 5
    assert str(settings.demos["fake"]["sample_size"]) == "7"


def test_config_path_from_environment(tmp_path, monkeypatch):
    config = tmp_path / "env.toml"
    config.write_text('data_dir = "/tmp/elsewhere"\n')
    monkeypatch.setenv("VECTORFAIR_CONFIG", str(config))
    assert str(load_settings().data_dir) == "/tmp/elsewhere"


def test_unknown_key_names_the_key(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[milvus]\nurl = "oops"\n')
    with pytest.raises(ConfigError, match=r"milvus\.url"):
        load_settings(config)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_broken_toml_is_a_config_error(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[milvus\n")
    with pytest.raises(ConfigError, match="invalid configuration"):
        load_settings(config)

from pathlib import Path

import pytest

from data.settings import SAMPLE_DIR, SettingsError, load_settings


def test_defaults_point_at_the_bundled_sample():
    settings = load_settings(environ={})
    assert settings.paths.catalog == SAMPLE_DIR / "items.jsonl"
    assert settings.server.host == "127.0.0.1"


def test_file_then_environment_then_options(tmp_path: Path):
    config = tmp_path / "concierge.toml"
    config.write_text("[eval]\nseed = 5\ntest_share = 0.2\n[server]\nport = 9000\n", encoding="utf-8")
    settings = load_settings(config, environ={"CONCIERGE_EVAL_SEED": "7"}, server={"port": 9100})
    assert settings.eval.seed == 7
    assert settings.eval.test_share == 0.2
    assert settings.server.port == 9100


def test_config_file_named_by_environment(tmp_path: Path):
    config = tmp_path / "other.toml"
    config.write_text('[paths]\nartifacts = "/srv/concierge"\n', encoding="utf-8")
    settings = load_settings(environ={"CONCIERGE_CONFIG": str(config)})
    assert settings.paths.artifacts == Path("/srv/concierge")


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ("[eval]\nseed = 'x'\n", {}, "[eval] seed: 'x' is not a valid int"),
        ("[eval]\nsede = 1\n", {}, "[eval] sede: unknown setting"),
        ("[evaluation]\nseed = 1\n", {}, "unknown section [evaluation]"),
        ("[eval\n", {}, "not valid TOML"),
        ("", {"CONCIERGE_EVAL_SEED": "1.5"}, "CONCIERGE_EVAL_SEED: '1.5' is not a valid int"),
        ("", {"CONCIERGE_SERVER_PORTT": "1"}, "CONCIERGE_SERVER_PORTT: unknown setting"),
    ],
)
def test_bad_settings_name_the_place(tmp_path: Path, text: str, environ: dict, message: str):
    config = tmp_path / "concierge.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=None) as caught:
        load_settings(config, environ=environ)
    assert message in str(caught.value)


def test_missing_settings_file(tmp_path: Path):
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_boolean_and_float_coercion():
    from dataclasses import dataclass

    from data.settings import _apply

    @dataclass(frozen=True)
    class Section:
        flag: bool = False
        share: float = 0.0

    section = _apply(Section(), {"flag": "yes", "share": "0.25"}, str)
    assert section == Section(flag=True, share=0.25)
    with pytest.raises(SettingsError, match="flag: 'maybe' is not a valid bool"):
        _apply(Section(), {"flag": "maybe"}, str)

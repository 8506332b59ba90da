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
        (
            "[conversation]\nquestion_choice = 'most'\n",
            {},
            "[conversation] question_choice: 'most': use one of reach, entropy",
        ),
        (
            "[conversation]\nquestion_cards = 'best'\n",
            {},
            "[conversation] question_cards: 'best': use one of candidates, ranked",
        ),
        (
            "[conversation]\nmin_reach_gain = 1.5\n",
            {},
            "[conversation] min_reach_gain: 1.5: use a share from 0 to 1",
        ),
        (
            "[ranking]\nnew_arrival_floor = 'top'\n",
            {},
            "[ranking] new_arrival_floor: 'top': use one of both, content, retrieval, none",
        ),
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


def test_the_console_login_is_read_from_the_file_and_the_environment(tmp_path: Path):
    from ui.auth import hash_password, verify_password

    hashed = hash_password("correct horse battery", n=2**10)
    config = tmp_path / "concierge.toml"
    config.write_text(f'[server]\nconsole_password_hash = "{hashed}"\n', encoding="utf-8")
    settings = load_settings(config, environ={"CONCIERGE_SERVER_CONSOLE_USER": "maria"})
    assert (settings.server.console_user, settings.server.console_password_hash) == ("maria", hashed)
    assert verify_password("correct horse battery", settings.server.console_password_hash)
    assert load_settings(environ={}).server.console_password_hash == ""


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ('[server]\nconsole_user = "maria:admin"\n', {}, "[server] console_user: 'maria:admin' holds ':'"),
        (
            "",
            {"CONCIERGE_SERVER_CONSOLE_FAILED_LOGINS_PER_MINUTE": "0"},
            "CONCIERGE_SERVER_CONSOLE_FAILED_LOGINS_PER_MINUTE: must be at least 1, got 0",
        ),
    ],
)
def test_a_console_login_that_cannot_work_is_a_settings_error_naming_the_field(
    tmp_path: Path, text: str, environ: dict, message: str
):
    config = tmp_path / "concierge.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ=environ)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("hashed", "message"),
    [
        (
            "hunter2",
            "[server] console_password_hash: not a password hash: expected scrypt$N$r$p$<salt base64>$<hash "
            "base64>, got 1 part; make one with `concierge hash-password`",
        ),
        (
            "scrypt$1000$8$1$c2FsdA==$" + "A" * 44,
            "[server] console_password_hash: scrypt needs N a power of two above 1",
        ),
    ],
)
def test_a_password_hash_that_does_not_parse_stops_the_server_at_start(tmp_path: Path, hashed, message):
    """The settings layer takes the string; the console (ui/auth.py owns the format) refuses it when the server
    is built, before it serves anything."""
    from data.settings import ServerSettings
    from tests.assistant_fixtures import small_assistant
    from ui.serve import build_server_app

    service = small_assistant(tmp_path).service
    with pytest.raises(ValueError) as raised:
        build_server_app(service, ServerSettings(console_user="maria", console_password_hash=hashed))
    assert str(raised.value).startswith(message)

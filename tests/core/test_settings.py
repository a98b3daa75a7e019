"""The settings model: every setting reachable by flag, variable and file; every bad value one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import annotated_types
import pytest

from celerystatus_server import cli
from celerystatus_server.config import Settings, SettingsError, env_name, flag_of, is_switch
from celerystatus_server.flags import reference_markdown, setting_flags

ROOT = Path(__file__).resolve().parents[2]

NUMERIC = [name for name, info in Settings.model_fields.items() if info.annotation in (int, float)]
SWITCHES = [name for name, info in Settings.model_fields.items() if is_switch(info)]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CELERY_STATUS_"):
            monkeypatch.delenv(name)


def _bounds(name: str) -> tuple[float | None, bool, float | None]:
    """(lower bound, lower bound allowed, upper bound) from the field's constraints."""
    low: float | None = None
    inclusive = False
    high: float | None = None
    for meta in Settings.model_fields[name].metadata:
        if isinstance(meta, annotated_types.Gt):
            low, inclusive = float(meta.gt), False  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Ge):
            low, inclusive = float(meta.ge), True  # type: ignore[arg-type]
        elif isinstance(meta, annotated_types.Le):
            high = float(meta.le)  # type: ignore[arg-type]
    return low, inclusive, high


def _bad_values(name: str) -> list[str]:
    values = ["nan", "NaN", "inf", "-inf", "1e999", "-1", "abc", "", "true", "1,5"]
    low, inclusive, high = _bounds(name)
    assert low is not None, f"{name} has no lower bound"
    values.append(f"{low - 0.5:g}" if inclusive else f"{low:g}")
    if low > 0 or (low == 0 and not inclusive):
        values.append("0")
    if high is not None:
        values.append(f"{high * 2:g}")
    if Settings.model_fields[name].annotation is int:
        values.append("1.5")
    return sorted(set(values))


def _numeric_cases() -> list[tuple[str, str]]:
    return [(name, value) for name in NUMERIC for value in _bad_values(name)]


def test_every_numeric_setting_is_covered() -> None:
    # Derived from the model: a new numeric field is tested without touching this file.
    assert {"refresh_interval", "round_deadline", "discovery_interval", "heartbeat_misses",
            "broker_probe_interval", "rate_burst", "max_streams"} <= set(NUMERIC)
    for name in NUMERIC:
        assert _bounds(name)[0] is not None, f"{name} needs a lower bound"
        assert Settings.model_fields[name].description, f"{name} needs help text"


def _serve(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["serve", "--disabled", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("name", "value"), _numeric_cases())
def test_bad_number_from_a_flag_exits_2_with_one_line(
    name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = flag_of(name).name
    code, err = _serve([f"{flag}={value}"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert flag in err and env_name(name) in err and "from the command line" in err, err


@pytest.mark.parametrize(("name", "value"), _numeric_cases())
def test_bad_number_from_a_variable_exits_2_with_one_line(
    name: str, value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_name(name), value)
    code, err = _serve([], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert flag_of(name).name in err and env_name(name) in err and "from the environment" in err, err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "abc"])
@pytest.mark.parametrize("name", NUMERIC)
def test_bad_number_from_the_config_file_names_the_file(name: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    literal = value if value in {"nan", "inf", "-1"} else f'"{value}"'
    path.write_text(f"{name} = {literal}\n")
    with pytest.raises(SettingsError) as caught:
        Settings.load(config_file=str(path))
    assert env_name(name) in str(caught.value) and f"from config file {path}" in str(caught.value)


@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_setting_is_reachable_by_flag_variable_and_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1.5 is valid for every numeric setting (and keeps round_deadline >= inspect_timeout).
    integer = Settings.model_fields[name].annotation is int
    file_value, env_value, flag_value = (3, 5, 7) if integer else (1.25, 1.5, 1.75)
    config = tmp_path / "s.toml"
    config.write_text(f"{name} = {file_value}\n")
    assert getattr(Settings.load(config_file=str(config)), name) == file_value
    monkeypatch.setenv(env_name(name), str(env_value))
    assert getattr(Settings.load(config_file=str(config)), name) == env_value
    args = cli.build_parser().parse_args(["serve", "--config", str(config), flag_of(name).name, str(flag_value)])
    from celerystatus_server.flags import settings_from_args

    assert getattr(settings_from_args(args), name) == flag_value


@pytest.mark.parametrize("name", SWITCHES)
def test_every_switch_has_both_spellings_over_the_variable(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from celerystatus_server.flags import settings_from_args

    flag = flag_of(name)
    command = "serve"
    monkeypatch.setenv(env_name(name), "yes")
    assert getattr(Settings.load(), name) is True
    assert getattr(settings_from_args(cli.build_parser().parse_args([command, flag.off])), name) is False
    monkeypatch.setenv(env_name(name), "0")
    assert getattr(settings_from_args(cli.build_parser().parse_args([command, flag.name])), name) is True
    monkeypatch.setenv(env_name(name), "maybe")
    with pytest.raises(SettingsError, match=env_name(name)):
        Settings.load()


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("on", True), ("no", False),
                                               ("OFF", False), ("", False), ("0", False)])
def test_boolean_spellings_of_variables(raw: str, expected: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_STATUS_SHOW_ARGS", raw)
    assert Settings.load().show_args is expected


def test_existing_flag_spellings_are_kept() -> None:
    parser = cli.build_parser()
    args = parser.parse_args([
        "serve", "--broker", "redis://h:1/0", "--app", "proj.celery:app", "--grpc-address", "127.0.0.1:1",
        "--http-address", "127.0.0.1:2", "--refresh-interval", "3", "--queue", "a", "--queue", "b",
        "--disabled", "--show-args", "--tokens-file", "t", "--tls-cert", "c", "--tls-key", "k",
        "--allow-unauthenticated", "--trust-forwarded-for", "--metrics-public", "--cors-origin",
        "https://ops.example", "--rate-limit", "5", "--rate-burst", "6", "--fresh-rate-limit", "1",
        "--fresh-burst", "2", "--max-streams", "9", "--max-streams-per-caller", "3", "--tls-client-ca", "ca",
        "--client-cert-roles", "r", "--allow-arg", "eval-*", "--allow-argsrepr",
    ])
    assert (args.broker_url, args.queues, args.enabled, args.max_streams_per_principal) == (
        "redis://h:1/0", ["a", "b"], False, "3"
    )
    bridge = parser.parse_args(["bridge", "--target", "h:1", "--http-address", "127.0.0.1:3", "--rate-limit", "1",
                                "--max-streams-per-caller", "2", "--show-args", "--token", "x", "--tls"])
    assert bridge.http_address == "127.0.0.1:3" and bridge.max_streams_per_principal == "2"
    assert set(setting_flags("bridge")) < set(setting_flags("serve"))


def test_lists_from_variables_flags_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "s.toml"
    config.write_text('queues = ["x", "y"]\nallow_arg_patterns = "eval-*, job-*"\n')
    loaded = Settings.load(config_file=str(config))
    assert loaded.queues == ("x", "y") and loaded.allow_arg_patterns == ("eval-*", "job-*")
    monkeypatch.setenv("CELERY_STATUS_QUEUES", "a, b,")
    assert Settings.load(config_file=str(config)).queues == ("a", "b")
    assert Settings.load({"queues": ["c"]}, config_file=str(config)).queues == ("c",)


def test_config_file_from_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from celerystatus_server.flags import settings_from_args

    config = tmp_path / "s.toml"
    config.write_text('grpc_address = "127.0.0.1:7"\n')
    monkeypatch.setenv("CELERY_STATUS_CONFIG", str(config))
    assert settings_from_args(cli.build_parser().parse_args(["serve"])).grpc_address == "127.0.0.1:7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("refresh_intervall = 2\n", "unknown setting 'refresh_intervall'"),
        ("refresh_interval = \n", "is not valid TOML"),
        ("[server]\nrefresh_interval = 2\n", "tables are not settings"),
        ("queues = 3\n", "--queue (CELERY_STATUS_QUEUES)"),
        ('broker_url = "foo://x"\n', "unsupported broker scheme 'foo'"),
        ("show_args = 3\n", "--show-args (CELERY_STATUS_SHOW_ARGS)"),
    ],
)
def test_config_file_errors_are_one_line(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "s.toml"
    config.write_text(text)
    code, err = _serve(["--config", str(config)], capsys) if "broker" not in text else (
        cli.main(["serve", "--config", str(config)]), capsys.readouterr().err
    )
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_missing_or_binary_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _serve(["--config", str(tmp_path / "none.toml")], capsys)
    assert code == 2 and "--config (CELERY_STATUS_CONFIG): cannot read" in err
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    code, err = _serve(["--config", str(binary)], capsys)
    assert code == 2 and "not UTF-8" in err


def test_cross_field_rules_name_both_settings() -> None:
    with pytest.raises(SettingsError, match=r"--round-deadline .* is 2, --inspect-timeout .* is 3"):
        Settings(inspect_timeout=3)
    with pytest.raises(SettingsError, match=r"--rate-burst .* must be >= 1 while --rate-limit"):
        Settings(rate_burst=0)
    assert Settings(rate_limit=0, rate_burst=0).rate_burst == 0
    assert Settings(broker_probe_interval=0).broker_probe_interval == 0
    with pytest.raises(SettingsError, match="tls_cert and tls_key must be given together"):
        Settings(tls_cert="c.pem")


def test_constructor_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_STATUS_REFRESH_INTERVAL", "nan")
    assert Settings(refresh_interval=4).refresh_interval == 4
    assert Settings().refresh_interval == 2.0


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.refresh_interval = 1
    assert settings.with_(refresh_interval=1).refresh_interval == 1


def test_settings_reference_is_in_step_with_the_model() -> None:
    # Regenerate with: python -m celerystatus_server.flags > docs/settings.md
    assert (ROOT / "docs" / "settings.md").read_text() == reference_markdown()


def test_the_documented_example_file_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "settings.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "celery-status.toml"
    config.write_text(example)
    loaded = Settings.load(config_file=str(config))
    assert loaded.queues == ("default", "reports") and loaded.grpc_address == "0.0.0.0:50051"


def test_readme_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/settings.md" in readme and "--config" in readme

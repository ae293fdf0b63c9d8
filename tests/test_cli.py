import pytest
from click.testing import CliRunner

from sigdesk import __version__
from sigdesk.cli import main


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    runner = CliRunner()
    data_dir = tmp_path / "data"

    def run(*args, input=None):
        return runner.invoke(main, ["--data-dir", str(data_dir), *args], input=input)

    run.data_dir = data_dir
    return run


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_user_create_reads_the_password_from_stdin(cli):
    result = cli(
        "user",
        "create",
        "--email",
        "o@example.com",
        "--name",
        "Olive",
        "--role",
        "owner",
        "--password-stdin",
        input="a long password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created owner o@example.com" in result.output
    again = cli(
        "user", "create", "--email", "o@example.com", "--name", "Olive", "--password-stdin", input="a long password\n"
    )
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_bad_arguments_give_one_line_and_non_zero_exit(cli):
    result = cli(
        "user", "create", "--email", "x@example.com", "--name", "X", "--role", "king", "--password-stdin", input="pw\n"
    )
    assert result.exit_code == 2 and "king" in result.output
    short = cli("user", "create", "--email", "x@example.com", "--name", "X", "--password-stdin", input="pw\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    assert "Traceback" not in short.output


def test_token_create_prints_a_working_token(cli):
    cli(
        "user",
        "create",
        "--email",
        "o@example.com",
        "--name",
        "Olive",
        "--role",
        "owner",
        "--password-stdin",
        input="a long password\n",
    )
    result = cli("token", "create", "--email", "o@example.com")
    assert result.exit_code == 0 and result.output.strip().startswith("sdk_")
    missing = cli("token", "create", "--email", "nobody@example.com")
    assert missing.exit_code == 1 and "No user" in missing.output


def test_settings_set_and_get(cli):
    assert cli("settings", "set", "general.business_name", "Rosa's Bakery").exit_code == 0
    assert cli("settings", "get", "general.business_name").output.strip() == "Rosa's Bakery"
    assert cli("settings", "set", "security.require_2fa", "--stdin", input="true\n").exit_code == 0
    assert cli("settings", "get", "security.require_2fa").output.strip() == "true"


def test_settings_errors(cli):
    unknown = cli("settings", "set", "nope", "1")
    assert unknown.exit_code == 1 and "Unknown setting 'nope'" in unknown.output
    both = cli("settings", "set", "general.business_name", "x", "--stdin", input="y")
    assert both.exit_code == 2
    bad = cli("settings", "set", "server.allowed_networks", "everyone")
    assert bad.exit_code == 1 and "not an IP address" in bad.output


def test_malformed_database_url_is_a_clear_error(cli):
    result = cli("--database-url", "mysql://user@:bad:port/db", "db", "upgrade")
    assert result.exit_code == 1
    assert "database URL" in result.output and "Traceback" not in result.output


def test_unreachable_database_is_a_clear_error(cli):
    result = cli("--database-url", "mysql+pymysql://root@127.0.0.1:1/nothing", "db", "upgrade")
    assert result.exit_code == 1
    assert "Cannot open the database" in result.output


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["--data-dir", str(blocker / "sub"), "db", "upgrade"])
    assert result.exit_code == 1
    assert "Cannot create the data directory" in result.output


def test_read_only_data_dir_is_a_clear_error(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere; covered by the file-in-the-way case")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = CliRunner().invoke(main, ["--data-dir", str(locked), "db", "upgrade"])
    assert result.exit_code == 1 and "not writable" in result.output


def test_missing_data_key_is_a_clear_error_and_no_key_is_created(cli):
    cli("settings", "set", "general.business_name", "x")
    (cli.data_dir / "data.key").unlink()
    result = cli("settings", "get", "general.business_name")
    assert result.exit_code == 1
    assert "data.key is missing" in result.output
    assert not (cli.data_dir / "data.key").exists()


def test_db_upgrade(cli):
    result = cli("db", "upgrade")
    assert result.exit_code == 0 and "up to date" in result.output


def test_every_feature_command_group_is_listed_and_has_help():
    """Features name their command groups in sigdesk.features; the CLI loads each only when it is run."""
    from sigdesk.features import COMMANDS

    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in listing.output or f"  {name}\n" in listing.output
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output

import os
import pty
import re
import socket
import subprocess
import sys

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


@pytest.mark.skipif(not os.environ.get("SIGDESK_TEST_DATABASE_URL"), reason="needs MariaDB: SIGDESK_TEST_DATABASE_URL")
def test_a_mysql_database_that_does_not_exist_is_named_with_how_to_create_it(cli):
    """SigDesk creates its tables, not the database: a newcomer who skipped CREATE DATABASE is told to run it."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["SIGDESK_TEST_DATABASE_URL"]).set(database="sigdesk_never_created")
    result = cli("--database-url", url.render_as_string(hide_password=False), "db", "upgrade")
    assert result.exit_code == 1, result.output
    assert "the database 'sigdesk_never_created' does not exist" in result.output
    assert "create it first, e.g. CREATE DATABASE `sigdesk_never_created` CHARACTER SET utf8mb4" in result.output
    assert "Traceback" not in result.output


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


def _create(cli, email, role=None, password="a long password"):
    args = ["user", "create", "--email", email, "--name", email.split("@")[0].title(), "--password-stdin"]
    return cli(*args, *(["--role", role] if role else []), input=password + "\n")


def test_a_secret_given_as_an_argument_is_saved_with_a_warning_to_use_stdin(cli):
    typed = cli("settings", "set", "whatsapp.access_token", "EAAG-secret")
    assert typed.exit_code == 0, typed.output
    assert "Warning: the secret whatsapp.access_token was given on the command line" in typed.stderr
    assert "--stdin" in typed.stderr and "EAAG-secret" not in typed.output
    piped = cli("settings", "set", "whatsapp.access_token", "--stdin", input="EAAG-secret\n")
    assert piped.exit_code == 0 and "Warning" not in piped.output
    plain = cli("settings", "set", "general.business_name", "Rosa's Bakery")
    assert "Warning" not in plain.output


def test_a_database_password_on_the_command_line_is_warned_about(cli):
    result = cli("--database-url", "mysql+pymysql://sigdesk:hunter2hunter2@127.0.0.1:1/crm", "db", "upgrade")
    assert "the database password in --database-url was given on the command line" in result.stderr
    assert "SIGDESK_DATABASE_URL" in result.stderr and "hunter2" not in result.output


def test_unset_values_read_the_same_in_settings_get_and_list_and_user_and_token_lists(cli):
    """A setting without a value reads "(not set)"; a sign-in or a token's use that has not happened yet reads
    "never" in both lists."""
    assert cli("db", "upgrade").exit_code == 0
    assert cli("settings", "get", "general.business_name").output.strip() == "(not set)"  # "" by default
    assert cli("settings", "get", "whatsapp.waba_id").output.strip() == "(not set)"  # None by default
    assert cli("settings", "get", "whatsapp.app_secret").output.strip() == "(not set)"  # a secret
    listing = cli("settings", "list").output
    for key in ("general.business_name", "whatsapp.waba_id", "whatsapp.app_secret"):
        assert re.search(rf"^{re.escape(key)} +\(not set\)$", listing, re.M), listing
    assert re.search(r"^retention\.audit_days +365$", listing, re.M)
    _create(cli, "o@example.com")
    cli("token", "create", "--email", "o@example.com")
    assert re.search(
        r"^o@example\.com  O  owner  active  2FA off  last sign-in never$", cli("user", "list").output, re.M
    )
    assert "last used never" in cli("token", "list").output


def test_token_list_says_never_for_a_token_not_used_yet(cli):
    _create(cli, "o@example.com")
    cli("token", "create", "--email", "o@example.com", "--name", "till")
    listing = cli("token", "list").output
    assert re.search(r"  till  live  created \d{4}-\d\d-\d\d \d\d:\d\d UTC  last used never$", listing, re.M), listing


def test_a_negative_number_is_a_value_and_gets_a_range_error_naming_the_setting(cli):
    result = cli("settings", "set", "retention.audit_days", "-5")
    assert result.exit_code == 1, result.output
    assert "retention.audit_days: '-5' is not a number of days between 0" in result.output
    assert "No such option" not in result.output
    assert cli("settings", "set", "retention.audit_days", "30").exit_code == 0
    assert cli("settings", "get", "retention.audit_days").output.strip() == "30"


def test_the_first_user_must_be_an_owner_and_is_one_by_default(cli):
    agent = _create(cli, "a@example.com", role="agent")
    assert agent.exit_code == 1 and "The first user must be an owner" in agent.output
    assert "No users yet" in cli("user", "list").output
    first = _create(cli, "o@example.com")
    assert first.exit_code == 0 and "Created owner o@example.com" in first.output
    second = _create(cli, "b@example.com")
    assert second.exit_code == 0 and "Created agent b@example.com" in second.output


def test_user_create_refuses_a_guessable_password_with_zxcvbns_advice(cli):
    result = _create(cli, "o@example.com", password="password123")
    assert result.exit_code == 1
    assert "This password is too easy to guess. This is a very common password." in result.output
    own_words = _create(cli, "rosa@rosasbakery.com", password="rosasbakery1987")
    assert own_words.exit_code == 1 and "too easy to guess" in own_words.output


@pytest.mark.parametrize(
    "args",
    [
        ("settings", "get", "general.business_name"),
        ("settings", "list"),
        ("user", "list"),
        ("token", "list"),
        # commands that need what a data dir holds (a user, data to read) refuse a mistyped --data-dir too,
        # rather than leave an empty install (and a new data key) behind
        ("token", "create", "--email", "o@example.com"),
        ("user", "deactivate", "--email", "o@example.com"),
        ("user", "unlock", "--email", "o@example.com"),
        ("user", "password", "--email", "o@example.com", "--password-stdin"),
        ("backup", "create", "--passphrase-stdin", "--out", "{tmp}/b.sigdesk-backup"),
        ("export", "--what", "contacts", "--out", "{tmp}/contacts.csv"),
        ("predictions", "status"),
        ("analytics", "rebuild"),
    ],
    ids=" ".join,
)
def test_settings_get_and_the_lists_on_a_missing_data_dir_create_nothing(cli, tmp_path, args):
    result = cli(*(arg.format(tmp=tmp_path) for arg in args), input="a long passphrase nobody guesses\n")
    assert result.exit_code == 1, (args, result.output)
    assert f"There is no SigDesk data dir at {cli.data_dir}" in result.output
    assert "--data-dir" in result.output
    assert not cli.data_dir.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_user_list_and_token_list_show_who_and_what_but_no_secrets(cli):
    _create(cli, "o@example.com", role="owner")
    _create(cli, "b@example.com", role="agent")
    value = cli("token", "create", "--email", "b@example.com", "--name", "till").output.strip()
    cli("token", "create", "--email", "o@example.com")
    users = cli("user", "list")
    assert users.exit_code == 0
    assert re.search(r"^o@example\.com  O  owner  active  2FA off", users.output, re.M), users.output
    assert re.search(r"^b@example\.com  B  agent  active", users.output, re.M)
    assert "$2b$" not in users.output
    tokens = cli("token", "list")
    assert tokens.exit_code == 0 and "b@example.com  till  live" in tokens.output
    assert "o@example.com  CLI token  live" in tokens.output
    assert value not in tokens.output and value[4:12] not in tokens.output and "sdk_" not in tokens.output
    mine = cli("token", "list", "--email", "b@example.com").output
    assert "till" in mine and "o@example.com" not in mine
    assert cli("token", "list", "--email", "x@example.com").exit_code == 1


def test_a_busy_port_is_named_and_another_port_suggested(cli):
    cli("db", "upgrade")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--host", "127.0.0.1", "--port", str(port))
    assert result.exit_code == 1, result.output
    assert f"Port {port} is already in use on 127.0.0.1" in result.output
    # the whole command, which also works for a bare `sigdesk` that fell back to serving (it has no --port)
    assert f"sigdesk serve --port {port + 1}" in result.output


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_a_busy_port_refuses_the_start_before_anything_is_created_in_a_new_data_dir(tmp_path, monkeypatch, https):
    monkeypatch.delenv("SIGDESK_DATABASE_URL", raising=False)
    data_dir = tmp_path / "new"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main,
            ["--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", str(port)]
            + (["--https"] if https else []),
        )
    assert result.exit_code == 1, result.output
    assert f"Port {port} is already in use on 127.0.0.1" in result.output
    assert not data_dir.exists()  # no data key, no database, no certificate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.lock"]  # only the (released) lock beside it


def test_log_lines_print_above_a_backup_progress_bar_not_inside_it(tmp_path):
    """On a terminal, the 'backup written' log line (shown with --verbose) comes while the bar is still drawn:
    it must start on a line of its own (the bar's line cleared), and the bar is drawn again after it."""
    made = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "db", "upgrade"])  # and the data key
    assert made.exit_code == 0, made.output
    main_fd, terminal_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGDESK_")}
    env.update(SIGDESK_DATA_DIR=str(tmp_path / "data"), COLUMNS="100")
    process = subprocess.Popen(
        [sys.executable, "-m", "sigdesk", "-v", "backup", "create", "--passphrase-stdin", "--out", str(tmp_path / "b")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=terminal_fd,
        env=env,
    )
    os.close(terminal_fd)
    process.stdin.write(b"a backup passphrase\n")
    process.stdin.close()
    screen = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the terminal's other end closed: the process is done
            break
        if not chunk:
            break
        screen += chunk
    os.close(main_fd)
    assert process.wait(timeout=60) == 0, screen
    text = screen.decode("utf-8", "replace").replace("\r\n", "\n")  # a terminal turns \n into \r\n
    assert "Encrypting  [" in text, text  # a bar was drawn
    logged = [line for line in text.split("\n") if "backup written" in line]
    assert len(logged) == 1, text
    after_last_clear = re.split(r"\r|\x1b\[K", logged[0])[-1]
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO sigdesk\.backup\.services: backup written", after_last_clear
    )
    assert "Encrypting  [" in text.split("backup written", 1)[1]  # drawn again below the log line


@pytest.mark.parametrize("command", [("predictions", "refresh"), ("analytics", "rebuild")], ids=" ".join)
def test_commands_that_say_their_result_print_no_log_lines_without_verbose(tmp_path, command):
    """The service's own info line ("refreshed 0 customers ...") repeats the command's last line: it shows only
    with -v, like backup create's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGDESK_")}
    env.update(SIGDESK_DATA_DIR=str(tmp_path / "data"))
    made = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "db", "upgrade"])
    assert made.exit_code == 0, made.output

    def run(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sigdesk", *flags, *command], capture_output=True, text=True, env=env, timeout=120
        )

    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert " INFO " not in quiet.stderr, quiet.stderr
    verbose = run("-v")
    assert verbose.returncode == 0 and " INFO sigdesk." in verbose.stderr, verbose.stderr

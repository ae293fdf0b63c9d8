from pathlib import Path

import pytest

from sigdesk.onboarding import services as onboarding


def test_steps_go_in_order_and_end_done():
    assert [onboarding.next_step(name) for name in onboarding.STEPS] == ["whatsapp", "inbound", "backup", "done"]


def test_passphrases_must_match_and_be_hard_to_guess():
    good = "sofa lantern quietly"
    assert onboarding.check_passphrase(good, good) == good
    with pytest.raises(onboarding.OnboardingError, match="do not match"):
        onboarding.check_passphrase(good, good.upper())
    with pytest.raises(onboarding.OnboardingError, match="at least 8"):
        onboarding.check_passphrase("short", "short")
    with pytest.raises(onboarding.OnboardingError, match="backup passphrase is too easy to guess"):
        onboarding.check_passphrase("1234567890", "1234567890")


def test_backup_folder_must_exist_unless_it_is_the_suggested_one(tmp_path):
    assert onboarding.check_backup_folder(f"  {tmp_path}  ") == tmp_path
    with pytest.raises(onboarding.OnboardingError, match="does not exist"):
        onboarding.check_backup_folder(str(tmp_path / "nope"))
    with pytest.raises(onboarding.OnboardingError, match="not a folder|does not exist"):
        (tmp_path / "file").write_text("x")
        onboarding.check_backup_folder(str(tmp_path / "file"))
    made = tmp_path / "SigDesk Backups"
    assert onboarding.check_backup_folder(str(made), may_create=made) == made and made.is_dir()
    assert oct(made.stat().st_mode & 0o777) == "0o700"
    assert isinstance(onboarding.suggested_backup_folder(), Path)

"""The one password policy: long enough, and not a password an attacker tries early (zxcvbn)."""

import pytest

from sigdesk.passwords import password_problem


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "1234567890", "Password2024!", "iloveyou123"])
def test_common_and_predictable_passwords_are_refused_with_zxcvbns_advice(password):
    problem = password_problem(password)
    assert problem is not None and problem.startswith("This password is too easy to guess.")
    assert "common" in problem or "Add another word" in problem


def test_a_password_made_of_the_accounts_own_words_is_refused():
    assert password_problem("rosasbakery1987") is None
    problem = password_problem("rosasbakery1987", ("rosa@rosasbakery.com", "Rosa Baker"))
    assert problem is not None and "too easy to guess" in problem


@pytest.mark.parametrize("password", ["correct horse battery", "a long password", "ivory tangent walrus"])
def test_uncommon_passphrases_are_accepted(password):
    assert password_problem(password, ("owner@example.com", "Olive Owner")) is None


def test_length_limits_come_first():
    assert "at least 10" in password_problem("Zq8!vR2#")
    assert "at most 1024" in password_problem("correct horse battery " * 60)
    assert password_problem("the quiet otter reads maps " * 30) is None  # only the first 72 characters are scored

import logging

from tests.conftest import PASSWORD


def test_logs_hold_no_passwords_tokens_or_codes(auth, client, caplog, owner):
    caplog.set_level(logging.DEBUG)
    codes = auth.enrol_totp(owner)
    page = auth.post("/account/tokens", {"name": "probe"}, form_page="/account/").get_data(as_text=True)
    token = page.split('id="api-token" class="secret">')[1].split("<")[0]
    client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    auth.logout()
    for _ in range(11):
        auth.post("/login", {"email": owner.email, "password": "a-wrong-password-123"})
    text = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "rate limit" in text
    for secret in (PASSWORD, "a-wrong-password-123", codes[0], owner.totp_secret, token):
        assert secret not in text
    assert owner.email not in text

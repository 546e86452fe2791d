"""Account security (issue 4): app passwords, 2FA (TOTP), failed-login
throttling, sender rules, quotas and holds, disabled accounts, trusted
networks, no user enumeration."""
import base64
import hashlib
import hmac
import re
import socket
import struct
import subprocess
import time

import pytest

import conftest
from conftest import (OUTPOST, PASSWORD, RCPT, USER, Dialog,
                      simple_message, wait_until)

APP_RE = re.compile(rb"^    ([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})$", re.M)


def totp(secret_b32, t=None, step=30, digits=6):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if t is None else t) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    v = struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff
    return "%0*d" % (digits, v % 10 ** digits)


def apppass_add(o, label, user=USER):
    r = o.cli("apppass", "add", user, label)
    assert r.returncode == 0, r
    m = APP_RE.search(r.stdout)
    assert m, r.stdout
    return m.group(1).decode()


def enrol_2fa(o, user=USER):
    """Runs `user 2fa EMAIL on`, reads the secret it prints, answers
    with the current code.  Returns the base32 secret."""
    p = subprocess.Popen([OUTPOST, "-c", o.conf, "user", "2fa", user, "on"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    secret = None
    uri = None
    try:
        for _ in range(500):
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(b"otpauth://"):
                uri = line.decode().strip()
            m = re.match(rb"^Secret \(for manual entry\): ([A-Z2-7]+)$",
                         line.strip())
            if m:
                secret = m.group(1).decode()
                break
        assert secret, "no secret printed"
        assert uri and ("secret=" + secret) in uri and "digits=6" in uri, uri
        out, err = p.communicate((totp(secret) + "\n").encode(), timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    assert p.returncode == 0, (out, err)
    assert b"2FA is on" in out
    return secret


def auth_login(d, user, pw):
    d.cmd("AUTH LOGIN")
    d.expect(334)
    d.cmd(base64.b64encode(user.encode()).decode())
    d.expect(334)
    d.cmd(base64.b64encode(pw.encode()).decode())
    return d.reply()


def try_auth(o, user=USER, pw=PASSWORD):
    with o.dialog("implicit") as d:
        d.ehlo()
        return d.auth_plain(user, pw)


# --------------------------------------------------------------------------
# App passwords

@pytest.mark.outpost_conf({"accounts": {"counter_flush": "1s"}})
def test_app_password(outpost_setup):
    """An app password works with AUTH PLAIN and LOGIN, with or without
    spaces, in any case; list shows last use; revoke stops it at once."""
    o = outpost_setup
    ap = apppass_add(o, "phone")
    for pw in (ap, ap.replace(" ", ""), ap.upper()):
        r = try_auth(o, USER, pw)
        assert r.code == 235, (pw, r)
    with o.dialog("starttls") as d:
        d.ehlo()
        r = auth_login(d, USER, ap)
        assert r.code == 235, r
    assert "via=app-password" in o.log_text()
    # duplicate label: clear error, exit code for scripts
    r = o.cli("apppass", "add", USER, "phone")
    assert r.returncode == 73 and b"already" in r.stderr, r
    r = o.cli("apppass", "add", "nobody@example.test", "x")
    assert r.returncode == 67, r
    r = o.cli("apppass", "add", "not-an-address", "x")
    assert r.returncode == 65, r

    def listed():
        r = o.cli("apppass", "list", USER)
        return r.returncode == 0 and b"from 127.0.0.1" in r.stdout and r
    assert wait_until(listed, timeout=10)
    r = o.cli("apppass", "revoke", USER, "phone")
    assert r.returncode == 0, r
    r = try_auth(o, USER, ap)
    assert r.code == 535 and r.enhanced == "5.7.8", r
    r = o.cli("apppass", "revoke", USER, "phone")
    assert r.returncode == 67, r


def test_password_change_revokes_app_passwords(outpost_setup):
    o = outpost_setup
    ap = apppass_add(o, "laptop")
    assert try_auth(o, USER, ap).code == 235
    r = o.cli("user", "passwd", USER, input=b"new secret pw\n")
    assert r.returncode == 0 and b"revoked" in r.stdout, r
    assert try_auth(o, USER, ap).code == 535
    assert try_auth(o, USER, "new secret pw").code == 235


# --------------------------------------------------------------------------
# 2FA

def test_2fa(outpost_setup):
    """With 2FA on, the right regular password gets 534 5.7.9, a wrong one
    535 5.7.8, an app password 235; a used code is refused; off restores."""
    o = outpost_setup
    secret = enrol_2fa(o)
    r = o.cli("user", "show", USER)
    assert b"2fa:     on" in r.stdout, r
    r = try_auth(o, USER, PASSWORD)
    assert r.code == 534 and r.enhanced == "5.7.9", r
    assert "Application-specific password required" in r.text
    r = try_auth(o, USER, "wrong password")
    assert r.code == 535 and r.enhanced == "5.7.8", r
    ap = apppass_add(o, "phone")
    assert try_auth(o, USER, ap).code == 235
    # a code is accepted once (RFC 6238 5.2): the second use fails
    code = totp(secret)
    r1 = o.cli("user", "2fa", USER, "verify", code)
    r2 = o.cli("user", "2fa", USER, "verify", code)
    assert r2.returncode == 65, r2
    assert r1.returncode in (0, 65)
    bad = "000000" if code != "000000" else "111111"
    r = o.cli("user", "2fa", USER, "verify", bad)
    assert r.returncode == 65
    r = o.cli("user", "2fa", USER, "off")
    assert r.returncode == 0, r
    assert try_auth(o, USER, PASSWORD).code == 235
    assert try_auth(o, USER, ap).code == 235


def test_2fa_wrong_code_leaves_it_off(outpost_setup):
    o = outpost_setup
    r = o.cli("user", "2fa", USER, "on", input=b"123\n")
    assert r.returncode == 65, r
    assert try_auth(o, USER, PASSWORD).code == 235
    r = o.cli("user", "2fa", USER, "bogus")
    assert r.returncode == 64
    r = o.cli("user", "2fa", USER, "--help")
    assert r.returncode == 0 and b"usage" in r.stdout


# --------------------------------------------------------------------------
# Throttling

class SrcDialog(Dialog):
    """A Dialog from a given loopback source address."""
    def __init__(self, src, host, port, **kw):
        orig = socket.create_connection
        socket.create_connection = lambda addr, timeout=None: orig(
            addr, timeout=timeout, source_address=(src, 0))
        try:
            super().__init__(host, port, **kw)
        finally:
            socket.create_connection = orig


def auth_from(o, src, user=USER, pw=PASSWORD):
    d = SrcDialog(src, o.host, o.port_tls, tls=True, ca=o.ca)
    d.expect(220)
    d.ehlo()
    r = d.auth_plain(user, pw)
    return d, r


@pytest.mark.outpost_conf({"limits": {"auth_failures": "3",
                                      "auth_failure_window": "3s"}})
def test_throttle_per_address(outpost_setup):
    """After 3 failures from one address: 454 4.7.0, then 421 and close;
    the real user from another address is not locked out; the window ends."""
    o = outpost_setup
    assert try_auth(o).code == 235          # 127.0.0.1 is a known address
    for _ in range(3):
        d, r = auth_from(o, "127.0.0.2", USER, "guess")
        assert r.code == 535, r
        d.close()
    d, r = auth_from(o, "127.0.0.2", USER, PASSWORD)
    assert r.code == 454 and r.enhanced == "4.7.0", r
    assert "Too many login attempts" in r.text
    r = d.auth_plain(USER, PASSWORD)
    assert r.code == 421 and r.enhanced == "4.7.0", r
    d.wait_closed()
    d.close()
    assert try_auth(o).code == 235
    log = o.log_text()
    assert "auth throttled" in log and "client=[127.0.0.2]" in log
    assert re.search(r"auth failed, user=alice@example.test, .*"
                     r"client=\[127\.0\.0\.2\]", log)
    time.sleep(3.5)                         # the window ends
    d, r = auth_from(o, "127.0.0.2", USER, PASSWORD)
    assert r.code == 235, r
    d.close()


@pytest.mark.outpost_conf({"limits": {"auth_failures": "3",
                                      "auth_failure_window": "60s"}})
def test_throttle_password_spraying(outpost_setup):
    """Failures against one account from many addresses throttle new
    addresses only; an address that logged in before still can."""
    o = outpost_setup
    assert try_auth(o).code == 235
    for src in ("127.0.0.3", "127.0.0.4", "127.0.0.5"):
        d, r = auth_from(o, src, USER, "spray")
        assert r.code == 535, r
        d.close()
    d, r = auth_from(o, "127.0.0.6", USER, PASSWORD)
    assert r.code == 454, r
    d.close()
    assert try_auth(o).code == 235          # the real user
    r = o.cli("user", "add", "carol@example.test", input=b"carol pw\n")
    assert r.returncode == 0
    d, r = auth_from(o, "127.0.0.6", "carol@example.test", "carol pw")
    assert r.code == 235, r
    d.close()


@pytest.mark.outpost_conf({"limits": {"auth_failure_delay": "1s"}})
def test_failure_delay_does_not_block_others(outpost_setup):
    """A delayed 535 (evtimer) does not stall other sessions."""
    o = outpost_setup
    slow = o.dialog("implicit")
    slow.ehlo()
    tok = base64.b64encode(("\0%s\0%s" % (USER, "bad")).encode()).decode()
    slow.cmd("AUTH PLAIN " + tok)
    assert o.noop_works()
    r = slow.reply(timeout=10)
    assert r.code == 535, r
    slow.close()


# --------------------------------------------------------------------------
# Disabled accounts, enumeration

def test_disable_enable(outpost_setup):
    o = outpost_setup
    ap = apppass_add(o, "phone")
    r = o.cli("user", "disable", USER)
    assert r.returncode == 0, r
    r = try_auth(o)
    assert r.code == 535 and r.enhanced == "5.7.8", r
    assert "auth refused: account alice@example.test is disabled" in o.log_text()
    assert try_auth(o, USER, ap).code == 535
    r = o.cli("user", "enable", USER)
    assert r.returncode == 0
    assert try_auth(o).code == 235
    r = o.cli("user", "disable", "nobody@example.test")
    assert r.returncode == 67


def test_no_enumeration(outpost_setup):
    """Unknown user, wrong password and revoked app password: the same
    reply; failure timing of unknown vs known user roughly equal."""
    o = outpost_setup
    ap = apppass_add(o, "old")
    o.cli("apppass", "revoke", USER, "old")
    replies = set()
    for user, pw in ((USER, "wrong"), ("nobody@example.test", PASSWORD),
                     (USER, ap), ("nobody@example.test", ap)):
        r = try_auth(o, user, pw)
        replies.add(r.raw)
    assert len(replies) == 1, replies
    assert list(replies)[0].startswith(b"535 5.7.8 ")

    def med(user, pw, n=7):
        ts = []
        for _ in range(n):
            with o.dialog("implicit") as d:
                d.ehlo()
                t = time.monotonic()
                d.auth_plain(user, pw)
                ts.append(time.monotonic() - t)
        return sorted(ts)[n // 2]
    a, b = med(USER, "wrong"), med("nobody@example.test", "wrong")
    assert max(a, b) < 20 * min(a, b) + 0.05, (a, b)


# --------------------------------------------------------------------------
# Sender rules

def mail_from(o, sender, user=USER, pw=PASSWORD):
    with o.dialog("implicit") as d:
        d.ehlo()
        r = d.auth_plain(user, pw)
        assert r.code == 235, r
        d.cmd("MAIL FROM:<%s>" % sender)
        return d.reply()


def test_sender_reject(outpost_setup):
    o = outpost_setup
    r = mail_from(o, "mallory@example.test")
    assert r.code == 553 and r.enhanced == "5.7.1", r
    assert "not owned by user alice@example.test" in r.text
    assert mail_from(o, "ALICE@example.test").code == 250
    assert mail_from(o, "").code == 250
    r = o.cli("user", "alias", "add", USER, "sales@example.test")
    assert r.returncode == 0, r
    assert mail_from(o, "sales@example.test").code == 250
    r = o.cli("user", "alias", "list", USER)
    assert r.stdout.strip() == b"sales@example.test"
    r = o.cli("user", "alias", "add", USER, "sales@example.test")
    assert r.returncode == 73
    r = o.cli("user", "alias", "add", USER, "not an address")
    assert r.returncode == 65
    r = o.cli("user", "alias", "del", USER, "sales@example.test")
    assert r.returncode == 0
    assert mail_from(o, "sales@example.test").code == 553


@pytest.mark.outpost_conf({"accounts": {"sender_rule": "rewrite"}})
def test_sender_rewrite(outpost_setup):
    o = outpost_setup
    s = o.smtp_ssl()
    try:
        s.sendmail("mallory@example.test", [RCPT], simple_message("rw"))
        qid = s.queue_id()
    finally:
        s.quit()
    env, _msg = o.stored(qid)
    assert b"mallory@example.test" not in env, env
    assert USER.encode() in env
    assert "rewritten to <alice@example.test>" in o.log_text()


# --------------------------------------------------------------------------
# Quotas

def send_one(d, rcpts=(RCPT,)):
    d.cmd("MAIL FROM:<%s>" % USER)
    r = d.reply()
    if r.code != 250:
        return r
    for rc in rcpts:
        d.cmd("RCPT TO:<%s>" % rc)
        r = d.reply()
        if r.code != 250:
            d.cmd("RSET")
            d.expect(250)
            return r
    d.cmd("DATA")
    d.expect(354)
    d.send(simple_message("q") + b".\r\n")
    return d.reply()


def shows(o, text):
    return text in o.cli("user", "show", USER).stdout


@pytest.mark.outpost_conf({"limits": {"daily_messages": "2",
                                      "daily_recipients": "3"},
                           "accounts": {"counter_flush": "1s"}})
def test_daily_quota_and_restart(outpost_setup):
    o = outpost_setup
    with o.session() as d:
        assert send_one(d).code == 250
        r = send_one(d, ("a@example.org", "b@example.org", "c@example.org"))
        assert r.code == 550 and r.enhanced == "5.4.5", r
        assert "Daily sending quota exceeded" in r.text
        assert send_one(d).code == 250
        r = send_one(d)
        assert r.code == 550 and r.enhanced == "5.4.5", r
    assert wait_until(lambda: shows(o, b"today:   2 messages of 2"))
    o.stop()
    o.start()
    with o.session() as d:
        r = send_one(d)
        assert r.code == 550 and r.enhanced == "5.4.5", r


@pytest.mark.outpost_conf({"limits": {"daily_messages": "3"},
                           "accounts": {"counter_flush": "1s"}})
def test_counters_survive_kill(outpost_setup):
    o = outpost_setup
    with o.session() as d:
        assert send_one(d).code == 250
        assert send_one(d).code == 250
    assert wait_until(lambda: shows(o, b"today:   2 messages"))
    o.restart()
    with o.session() as d:
        assert send_one(d).code == 250
        assert send_one(d).code == 550


@pytest.mark.outpost_conf({"limits": {"hourly_messages": "1"}})
def test_hourly_limit(outpost_setup):
    o = outpost_setup
    with o.session() as d:
        assert send_one(d).code == 250
        r = send_one(d)
        assert r.code == 450 and r.enhanced == "4.7.1", r


@pytest.mark.outpost_conf({"limits": {"daily_messages": "1",
                                      "hold_after_quota_hits": "2"},
                           "accounts": {"counter_flush": "1s"}})
def test_hold_and_release(outpost_setup):
    o = outpost_setup
    with o.session() as d:
        assert send_one(d).code == 250
        assert send_one(d).code == 550
        assert send_one(d).code == 550
        r = send_one(d)
        assert r.code == 550 and r.enhanced == "5.7.1", r
        assert "on hold" in r.text
    assert "quota: HOLD user=alice@example.test" in o.log_text()
    assert wait_until(lambda: shows(o, b"on hold"))
    r = o.cli("user", "release", USER)
    assert r.returncode == 0, r
    with o.session() as d:
        r = send_one(d)
        assert r.code == 550 and r.enhanced == "5.4.5", r


# --------------------------------------------------------------------------
# Trusted networks

def lan_conf(port, nets):
    return {"listener lan": {"listen": "*:%d" % port, "tls": "starttls",
                             "trusted_networks": nets}}


def unauth_mail(host, port, ca):
    d = Dialog(host, port, ca=ca)
    try:
        d.expect(220)
        d.ehlo()
        d.starttls()
        d.ehlo()
        d.cmd("MAIL FROM:<printer@lan.example>")
        return d.reply()
    finally:
        d.close()


def test_trusted_networks(make_outpost):
    port = conftest.free_port()
    o = make_outpost(overrides=lan_conf(port, "127.0.0.1/32"))
    # an IPv4 client on the dual-stack (*:PORT) socket arrives IPv4-mapped
    r = unauth_mail("127.0.0.1", port, o.ca)
    assert r.code == 250, r
    assert "in trusted network 127.0.0.1/32" in o.log_text()
    r = unauth_mail("127.0.0.1", o.port, o.ca)   # not on other listeners
    assert r.code == 530 and r.enhanced == "5.7.0", r
    r = unauth_mail("::1", port, o.ca)           # IPv6 is not in it
    assert r.code == 530, r


def test_trusted_networks_ipv6(make_outpost):
    port = conftest.free_port()
    o = make_outpost(overrides=lan_conf(port, "::1/128"))
    r = unauth_mail("::1", port, o.ca)
    assert r.code == 250, r
    r = unauth_mail("127.0.0.1", port, o.ca)
    assert r.code == 530, r


def test_trusted_networks_bad_config(make_outpost):
    o = make_outpost(start=False)
    o.edit_conf(lan_conf(conftest.free_port(), "192.0.2.1/24"))
    r = subprocess.run([conftest.OUTPOSTD, "-c", o.conf, "--check-config"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and b"host bits" in (r.stderr + r.stdout), r

"""The account page (issue 9): HTTPS served by outpostd, sign-in with
password then TOTP, 2FA on/off, app passwords made on the page and used
over SMTP, password change revoking app passwords, usage, administrators,
and the security rules (headers, cookie flags, CSRF, escaping, limits).

Every flow is driven here over HTTP with http.client over TLS (verified
against the setup's CA); test_browser_flow drives the same flow in a real
headless Chromium through Playwright (tests/web/flow.js) when both are
installed (scripts/deps --test)."""
import base64
import hashlib
import hmac
import html
import http.client
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import time
import urllib.parse

import pytest

import conftest
from conftest import PASSWORD, RCPT, USER, simple_message, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
WEBDIR = os.path.join(os.path.dirname(HERE), "web")
FAIL_MSG = "Wrong address, password or code. Try again."
APP_RE = re.compile(r'id="apppass">([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})<')
SECRET_RE = re.compile(r'id="secret">([A-Z2-7 ]+)<')
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def totp(secret_b32, t=None, step=30, digits=6):
    secret_b32 = secret_b32.replace(" ", "")
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if t is None else t) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    v = struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff
    return "%0*d" % (digits, v % 10 ** digits)


class Web:
    """A tiny browser: one TLS connection per request, a cookie jar of
    one cookie, the last page's CSRF token."""

    def __init__(self, o):
        self.o = o
        self.ctx = ssl.create_default_context(cafile=o.ca)
        self.cookie = None
        self.csrf = None
        self.last = None

    def request(self, method, path, body=None, headers=None,
                content_type="application/x-www-form-urlencoded"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.o.port_web,
                                           context=self.ctx, timeout=10)
        hdrs = dict(headers or {})
        if self.cookie:
            hdrs["Cookie"] = "outpost_session=" + self.cookie
        if body is not None and content_type:
            hdrs["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for name, val in r.getheaders():
            if name.lower() == "set-cookie":
                m = re.match(r"outpost_session=([^;]*);", val)
                if m:
                    self.cookie = m.group(1) or None
        m = CSRF_RE.search(data)
        if m:
            self.csrf = m.group(1)
        self.last = (r, data)
        return r, data

    def get(self, path):
        r, data = self.request("GET", path)
        if r.status == 303:
            return self.get(r.getheader("Location"))
        return r, data

    def post(self, path, fields, csrf=True):
        f = dict(fields)
        if csrf:
            f["csrf"] = self.csrf
        r, data = self.request("POST", path, urllib.parse.urlencode(f))
        if r.status == 303:
            return self.get(r.getheader("Location"))
        return r, data

    def signin(self, user=USER, password=PASSWORD):
        self.get("/signin")
        return self.post("/signin", {"email": user, "password": password})


def wait_web(o):
    assert wait_until(lambda: _port_open(o.port_web), timeout=10), \
        "account page not listening"


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def smtp_login(o, user, password):
    s = smtplib.SMTP_SSL("127.0.0.1", o.port_tls, timeout=10,
                         context=o.ssl_context())
    try:
        s.login(user, password)
        return s
    except Exception:
        s.close()
        raise


def enrol_on_page(w):
    r, page = w.post("/security/2fa/start", {})
    assert r.status == 200
    m = SECRET_RE.search(page)
    assert m, page
    secret = m.group(1).replace(" ", "")
    assert '<svg class="qr"' in page and "<path d=\"M" in page
    now = time.time()
    code = totp(secret, now)
    r, page = w.post("/security/2fa/confirm", {"code": code})
    assert r.status == 200
    assert "2-Step Verification is on" in page, page
    return secret, now


@pytest.fixture
def web(outpost_setup):
    wait_web(outpost_setup)
    return Web(outpost_setup)


def test_headers_cookie_and_signin(outpost_setup, web):
    o = outpost_setup
    r, page = web.get("/")
    assert r.status == 200 and 'id="signin"' in page
    h = {k.lower(): v for k, v in r.getheaders()}
    assert "script-src" not in h["content-security-policy"]
    assert "default-src 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-store"
    cookie = h["set-cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Max-Age="):
        assert flag in cookie, cookie
    anon = web.cookie
    r, page = web.post("/signin", {"email": USER, "password": PASSWORD})
    assert r.status == 200 and 'id="who"' in page and USER in page
    assert web.cookie and web.cookie != anon, "session id not rotated"
    # the stylesheet is served (CSP style-src 'self')
    r, css = web.get("/style.css")
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/css")
    # sign out ends the session: the old cookie no longer works
    old = web.cookie
    r, page = web.post("/signout", {})
    assert 'id="signin"' in page
    web.cookie = old
    r, page = web.get("/security")
    assert 'id="signin"' in page
    assert "sign-in user=%s" % USER in o.log_text()
    assert PASSWORD not in o.log_text()


def test_same_message_for_every_failure_and_throttle_counts(outpost_setup, web):
    o = outpost_setup
    answers = []
    for user, pw in ((USER, "wrong password"),
                     ("nobody@example.test", PASSWORD),
                     ("not an address", "x")):
        web.cookie = None
        r, page = web.signin(user, pw)
        assert r.status == 200
        answers.append(re.search(r'id="error">([^<]*)<', page).group(1))
    assert answers == [html.escape(FAIL_MSG, quote=True)] * 3, answers
    # an app password does not sign in to the page either
    r = o.cli("apppass", "add", USER, "cli")
    ap = re.search(rb"([a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4})", r.stdout).group(1)
    web.cookie = None
    r, page = web.signin(USER, ap.decode())
    assert FAIL_MSG.replace("'", "&#39;") in page
    # the failures against USER are listed on the usage page
    web.cookie = None
    web.signin()
    r, page = web.get("/usage")
    rows = re.findall(r"<tr><td>[0-9-]+ [0-9:]+ UTC</td><td>127\.0\.0\.1</td></tr>",
                      page)
    assert len(rows) >= 2, page
    assert 'id="messages">0 of' in page


def test_throttle_refuses_sign_in(make_outpost):
    o = make_outpost(overrides={"limits": {"auth_failures": "3"}})
    wait_web(o)
    w = Web(o)
    for _ in range(3):
        w.cookie = None
        w.signin(USER, "wrong")
    w.cookie = None
    r, page = w.signin(USER, "wrong again")
    assert "Too many attempts" in page
    # the throttle is the SMTP one: AUTH from here is throttled as well
    with pytest.raises(smtplib.SMTPException):
        smtp_login(o, USER, "wrong")


def test_csrf_and_bad_input(outpost_setup, web):
    o = outpost_setup
    web.signin()
    # no token, a wrong token, a token from another session
    r, page = web.post("/apppasswords/create", {"label": "x"}, csrf=False)
    assert r.status == 403
    r, page = web.post("/apppasswords/create", {"label": "x", "csrf": "0" * 64},
                       csrf=False)
    assert r.status == 403
    other = Web(o)
    other.signin()
    r, page = web.post("/apppasswords/create",
                       {"label": "x", "csrf": other.csrf}, csrf=False)
    assert r.status == 403
    r, page = web.get("/apppasswords")
    assert "<td class=\"label\">x</td>" not in page
    # sign-in itself needs the token of the sign-in form
    fresh = Web(o)
    r, page = fresh.post("/signin", {"email": USER, "password": PASSWORD},
                         csrf=False)
    assert r.status == 403
    # wrong content type, malformed form, oversized body
    r, _ = web.request("POST", "/apppasswords/create", "label=y",
                       content_type="text/plain")
    assert r.status == 415
    r, _ = web.request("POST", "/apppasswords/create", "label=%zz&csrf=" + web.csrf)
    assert r.status == 400
    try:
        r, _ = web.request("POST", "/apppasswords/create",
                           "label=" + "a" * 40000 + "&csrf=" + web.csrf)
        assert r.status in (400, 413)
    except (OSError, http.client.HTTPException):
        pass
    # huge header
    try:
        r, _ = web.request("GET", "/", headers={"X-Big": "b" * 20000})
        assert r.status in (400, 413, 431)
    except (OSError, http.client.HTTPException):
        pass
    r, _ = web.request("PUT", "/", "x")
    assert r.status in (405, 501)
    r, page = web.get("/no/such/page")
    assert r.status == 404
    # a label is escaped wherever it is shown
    r, page = web.post("/apppasswords/create", {"label": "<b>\"pho'ne\"&"})
    assert "&lt;b&gt;&quot;pho&#39;ne&quot;&amp;" in page
    assert "<b>\"pho" not in page
    # plain HTTP on the TLS port gets no page
    s = socket.create_connection(("127.0.0.1", o.port_web), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = s.recv(4096)
    except OSError:
        data = b""
    s.close()
    assert b"Sign in" not in data and b"HTTP/1.1 200" not in data
    # and the server still serves
    r, page = web.get("/")
    assert r.status == 200


@pytest.mark.outpost_conf({"accounts": {"counter_flush": "1s"}})
def test_2fa_apppass_flow(outpost_setup, web):
    o = outpost_setup
    web.signin()
    secret, t0 = enrol_on_page(web)
    r, page = web.get("/")
    assert 'id="tfa">on<' in page
    # a signed-in session cannot start over (that would turn 2FA off
    # without a code)
    r, page = web.post("/security/2fa/start", {})
    assert "already on" in page and 'id="tfa">on<' in page
    assert 'id="secret"' not in page
    # the regular password no longer works over SMTP
    with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
        smtp_login(o, USER, PASSWORD)
    assert ei.value.smtp_code == 534
    # sign out, sign in: password, then a code; the code already used is
    # refused (replay), the next one works
    web.post("/signout", {})
    r, page = web.signin()
    assert 'id="code"' in page
    r, page = web.post("/signin/code", {"code": totp(secret, t0)})
    assert FAIL_MSG.replace("'", "&#39;") in page and 'id="code"' in page
    r, page = web.post("/signin/code", {"code": totp(secret, t0 + 30)})
    assert 'id="who"' in page, page
    # an app password made on the page, shown once with the settings
    r, page = web.post("/apppasswords/create", {"label": "My phone"})
    m = APP_RE.search(page)
    assert m, page
    ap = m.group(1)
    assert "587 with STARTTLS" in page and "465 with SSL/TLS" in page
    assert 'id="username">%s<' % USER in page
    r, page = web.get("/apppasswords")
    assert ap not in page and "My phone" in page
    s = smtp_login(o, USER, ap)
    s.sendmail(USER, [RCPT], simple_message("from the phone"))
    s.quit()
    assert wait_until(lambda: 'id="messages">1 of' in web.get("/usage")[1],
                      timeout=5)
    # created, last used and the last client address are listed
    assert wait_until(lambda: "127.0.0.1" in web.get("/apppasswords")[1],
                      timeout=10)
    # revoke it on the page: SMTP refuses it
    r, page = web.post("/apppasswords/revoke", {"label": "My phone"})
    assert "revoked" in page and "My phone" not in page.split("Your app passwords")[1]
    with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
        smtp_login(o, USER, ap)
    assert ei.value.smtp_code == 535
    assert ap.replace(" ", "") not in o.log_text() and ap not in o.log_text()
    assert secret not in o.log_text()


def test_2fa_off_asks_for_a_code(outpost_setup, web):
    o = outpost_setup
    web.signin()
    secret, t0 = enrol_on_page(web)
    r, page = web.post("/security/2fa/off", {"code": "000000"})
    assert "not right" in page and 'id="tfa">on<' in page
    r, page = web.post("/security/2fa/off", {"code": totp(secret, t0 + 30)})
    assert 'id="tfa">off<' in page
    s = smtp_login(o, USER, PASSWORD)
    s.quit()


def test_password_change_revokes_app_passwords(outpost_setup, web):
    o = outpost_setup
    web.signin()
    r, page = web.post("/apppasswords/create", {"label": "laptop"})
    ap = APP_RE.search(page).group(1)
    smtp_login(o, USER, ap).quit()
    r, page = web.post("/security/password",
                       {"current": "wrong", "new": "new password 1",
                        "new2": "new password 1"})
    assert "current password is wrong" in page
    r, page = web.post("/security/password",
                       {"current": PASSWORD, "new": "short", "new2": "short"})
    assert "too short" in page
    r, page = web.post("/security/password",
                       {"current": PASSWORD, "new": "new password 1",
                        "new2": "new password 2"})
    assert "do not match" in page
    r, page = web.post("/security/password",
                       {"current": PASSWORD, "new": "new password 1",
                        "new2": "new password 1"})
    assert "Your password was changed" in page and "revoked" in page, page
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(o, USER, ap)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(o, USER, PASSWORD)
    smtp_login(o, USER, "new password 1").quit()
    w2 = Web(o)
    r, page = w2.signin(USER, "new password 1")
    assert 'id="who"' in page
    assert "new password 1" not in o.log_text()


def test_admin_page(outpost_setup, web):
    o = outpost_setup
    bob = "bob@example.test"
    assert o.cli("user", "add", bob, input=b"bob password\n").returncode == 0
    web.signin()
    r, page = web.get("/admin")
    assert r.status == 404            # not an administrator
    assert 'href="/admin"' not in web.get("/")[1]
    r = o.cli("user", "admin", USER, "on")
    assert r.returncode == 0, r
    assert o.cli("user", "admin", "nobody@example.test", "on").returncode != 0
    assert o.cli("user", "admin", USER, "maybe").returncode != 0
    r, page = web.get("/admin")
    assert r.status == 200 and bob in page and 'id="qmessages">' in page
    r, page = web.post("/admin/user", {"email": bob, "action": "disable"})
    assert "is now disabled" in page
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(o, bob, "bob password")
    r, page = web.post("/admin/user", {"email": bob, "action": "enable"})
    smtp_login(o, bob, "bob password").quit()
    # bob (no admin) cannot use the admin form
    wb = Web(o)
    wb.signin(bob, "bob password")
    r, page = wb.post("/admin/user", {"email": USER, "action": "disable"})
    assert r.status == 404
    smtp_login(o, USER, PASSWORD).quit()


def test_client_gone_during_password_check(outpost_setup, web):
    """The browser disconnects while its password is being checked: the
    answer is dropped, the server keeps serving."""
    o = outpost_setup
    web.get("/signin")
    body = urllib.parse.urlencode({"email": USER, "password": PASSWORD,
                                   "csrf": web.csrf}).encode()
    for _ in range(5):
        raw = socket.create_connection(("127.0.0.1", o.port_web), timeout=5)
        s = web.ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"POST /signin HTTP/1.1\r\nHost: localhost\r\n"
                  b"Cookie: outpost_session=" + web.cookie.encode() +
                  b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        s.close()
    assert wait_until(lambda: o.log_text().count("sign-in user=") >= 1,
                      timeout=10)
    w2 = Web(o)
    r, page = w2.signin()
    assert 'id="who"' in page


def test_sigterm_with_open_connections(outpost_setup, web):
    o = outpost_setup
    web.signin()
    idle = socket.create_connection(("127.0.0.1", o.port_web), timeout=5)
    tls = ssl.create_default_context(cafile=o.ca).wrap_socket(
        socket.create_connection(("127.0.0.1", o.port_web), timeout=5),
        server_hostname="localhost")
    # and a sign-in whose password check may still be running
    web.cookie = None
    web.get("/signin")
    body = urllib.parse.urlencode({"email": USER, "password": PASSWORD,
                                   "csrf": web.csrf}).encode()
    tls.sendall(b"POST /signin HTTP/1.1\r\nHost: localhost\r\n"
                b"Cookie: outpost_session=" + web.cookie.encode() +
                b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)
    o.stop()
    assert not o.problems, o.problems
    idle.close()
    tls.close()


def test_off_by_default_and_listener_errors(make_outpost):
    o = make_outpost(start=False)
    text = o.conf_text()
    assert re.search(r"\[account_page\]\nlisten = 127\.0\.0\.1:%d\n" % o.port_web,
                     text)
    # no listen key: no page
    with open(o.conf, "w") as f:
        f.write(re.sub(r"(\[account_page\]\n)listen = .*\n", r"\1", text))
    o.start()
    assert not _port_open(o.port_web)
    assert "account page" not in o.log_text()
    o.stop()
    # a bad address is reported with file:line
    with open(o.conf, "w") as f:
        f.write(re.sub(r"(\[account_page\]\n)listen = .*\n",
                       r"\1listen = not-an-address\n", text))
    r = subprocess.run([conftest.OUTPOSTD, "-c", o.conf, "--check-config"],
                       capture_output=True, timeout=30)
    assert r.returncode != 0
    assert re.search(rb"outpost\.conf:\d+: \[account_page\] listen", r.stderr), r.stderr
    # the port taken: outpostd says so and exits
    with open(o.conf, "w") as f:
        f.write(text)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", o.port_web))
    busy.listen(1)
    try:
        r = subprocess.run([conftest.OUTPOSTD, "-c", o.conf],
                           capture_output=True, timeout=30)
        assert r.returncode != 0
        assert b"cannot listen on 127.0.0.1:%d (account page)" % o.port_web \
            in r.stderr, r.stderr
    finally:
        busy.close()


def test_sighup_keeps_the_page(outpost_setup, web):
    o = outpost_setup
    web.signin()
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: "reloaded" in o.log_text(), timeout=10)
    r, page = web.get("/security")
    assert r.status == 200 and 'id="who"' in page
    w2 = Web(o)
    r, page = w2.signin()
    assert 'id="who"' in page


def _browser_ready():
    return (shutil.which("node") and os.path.exists("/usr/bin/chromium") and
            os.path.isdir(os.path.join(WEBDIR, "node_modules", "playwright-core")))


@pytest.mark.outpost_conf({"accounts": {"counter_flush": "1s"}})
@pytest.mark.skipif(not _browser_ready(),
                    reason="chromium or tests/web/node_modules missing "
                           "(scripts/deps --test)")
def test_browser_flow(outpost_setup, tmp_path):
    """Headless Chromium signs in, enrols 2FA, signs in again with a code
    (a replayed one is refused), creates an app password that smtplib then
    uses, revokes it; a form without its CSRF token is refused."""
    o = outpost_setup
    wait_web(o)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    env = dict(os.environ)
    env.update({
        "OUTPOST_URL": "https://localhost:%d" % o.port_web,
        "OUTPOST_USER": USER, "OUTPOST_PASSWORD": PASSWORD,
        "OUTPOST_SHOTS": str(shots),
        "OUTPOST_PROFILE": str(tmp_path / "profile"),
        "OUTPOST_CA": o.ca,
    })
    p = subprocess.Popen(["node", os.path.join(WEBDIR, "flow.js")], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    state = {}
    try:
        for _ in range(100):
            line = p.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            state.update(msg)
            if msg.get("step") == "apppass":
                s = smtp_login(o, USER, msg["apppass"])
                s.sendmail(USER, [RCPT], simple_message("from chromium"))
                s.quit()
                p.stdin.write("sent\n")
                p.stdin.flush()
            if msg.get("step") == "done":
                break
        p.stdin.close()
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    assert rc == 0, "flow.js failed: %s\n%s" % (state, err)
    assert state.get("step") == "done"
    with pytest.raises(smtplib.SMTPAuthenticationError):
        smtp_login(o, USER, state["apppass"])
    names = sorted(os.listdir(shots))
    assert len(names) >= 6, names

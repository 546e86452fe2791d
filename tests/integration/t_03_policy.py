"""Submission policy: TLS before AUTH, AUTH before MAIL, SASL details, STARTTLS rules."""
import base64

from conftest import PASSWORD, USER, Dialog, simple_message

OUTPOST_OVERRIDES = {"limits": {"auth_failures": "1000", "max_errors": "100"}}


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def test_ehlo_before_tls(outpost_module):
    """On the STARTTLS port, EHLO offers STARTTLS and the ESMTP extensions but not AUTH."""
    o = outpost_module
    with o.dialog("plain") as d:
        ext = d.ehlo()
        assert "STARTTLS" in ext, ext
        assert not any(e.startswith("AUTH") for e in ext), ext
        for need in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                     "CHUNKING", "SMTPUTF8"):
            assert need in ext, (need, ext)
        assert any(e.startswith("SIZE") for e in ext), ext


def test_greeting_and_ehlo_first_line(outpost_module):
    """Greeting is '220 localhost ESMTP ...'; EHLO's first line names the host and the client address."""
    o = outpost_module
    d = Dialog(o.host, o.port, ca=o.ca)
    with d:
        r = d.expect(220)
        assert r.lines[0].startswith("localhost "), r
        assert "ESMTP" in r.text
        d.cmd("EHLO client.example.test")
        r = d.expect(250)
        assert r.lines[0].startswith("localhost"), r
        assert "[127.0.0.1]" in r.lines[0], r


def test_auth_before_tls_refused(outpost_module):
    """AUTH PLAIN in plaintext on the STARTTLS port gets 530 5.7.0 (the password is never checked)."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.ehlo()
        d.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)))
        d.expect(530, "5.7.0")
        d.cmd("AUTH LOGIN")
        d.expect(530, "5.7.0")


def test_mail_before_tls_refused(outpost_module):
    """MAIL before STARTTLS gets 530 5.7.0 Must issue a STARTTLS command first."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.ehlo()
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(530, "5.7.0", text="Must issue a STARTTLS command first")
        d.cmd("RCPT TO:<bob@example.org>")
        r = d.reply()
        assert r.code in (503, 530), r


def test_mail_without_auth_refused(outpost_module):
    """After TLS, MAIL before AUTH gets 530 5.7.0 Authentication required, on both ports."""
    o = outpost_module
    for mode in ("starttls", "implicit"):
        with o.dialog(mode) as d:
            d.ehlo()
            d.cmd("MAIL FROM:<%s>" % USER)
            d.expect(530, "5.7.0", text="Authentication required")
            # Refused either way (no transaction, or no authentication).
            d.cmd("RCPT TO:<bob@example.org>")
            r = d.reply()
            assert r.code in (503, 530), r
            d.cmd("DATA")
            r = d.reply()
            assert r.code in (503, 530), r


def test_ehlo_after_starttls(outpost_module):
    """EHLO after STARTTLS offers AUTH PLAIN LOGIN and no longer STARTTLS."""
    o = outpost_module
    with o.dialog("starttls") as d:
        ext = d.ehlo()
        auth = [e for e in ext if e.startswith("AUTH ")]
        assert auth, ext
        mechs = auth[0].split()[1:]
        assert "PLAIN" in mechs and "LOGIN" in mechs, ext
        assert "STARTTLS" not in ext, ext


def test_ehlo_implicit(outpost_module):
    """On the implicit-TLS port EHLO offers AUTH and not STARTTLS."""
    o = outpost_module
    with o.dialog("implicit") as d:
        ext = d.ehlo()
        assert any(e.startswith("AUTH ") and "PLAIN" in e for e in ext), ext
        assert "STARTTLS" not in ext, ext


def test_starttls_forgets_ehlo(outpost_module):
    """After STARTTLS the session is back before EHLO: MAIL and AUTH without a new EHLO get 503 5.5.1."""
    o = outpost_module
    with o.dialog("starttls") as d:
        d.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)))
        d.expect(503, "5.5.1")
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(503, "5.5.1")
        d.ehlo()
        d.login()
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")


def test_starttls_twice_and_on_implicit(outpost_module):
    """STARTTLS inside TLS gets 503 5.5.1; STARTTLS with an argument gets 501 5.5.4."""
    o = outpost_module
    with o.dialog("starttls") as d:
        d.ehlo()
        d.cmd("STARTTLS")
        d.expect(503, "5.5.1")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
    with o.dialog("implicit") as d:
        d.ehlo()
        d.cmd("STARTTLS")
        d.expect(503, "5.5.1")
    with o.dialog("plain") as d:
        d.ehlo()
        d.cmd("STARTTLS now")
        d.expect(501, "5.5.4")
        d.starttls()
        d.ehlo()


def test_bad_credentials_same_reply(outpost_module):
    """Wrong password and unknown user both get 535 5.7.8 with identical text (no user enumeration)."""
    o = outpost_module
    texts = []
    for user, pw in ((USER, "wrong password"), ("nobody@example.test", PASSWORD),
                     ("nobody@example.test", "wrong password"),
                     ("alice", PASSWORD)):
        with o.dialog("implicit") as d:
            d.ehlo()
            r = d.auth_plain(user, pw)
            assert r.code == 535 and r.enhanced == "5.7.8", (user, r)
            texts.append(r.text)
            # The session goes on and can still log in properly.
            d.login()
    assert len(set(texts)) == 1, texts
    assert "Username and Password not accepted" in texts[0]


def test_auth_login_wrong_password(outpost_module):
    """AUTH LOGIN with a wrong password gets the same 535 5.7.8 as PLAIN."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.ehlo()
        plain = d.auth_plain(USER, "nope")
        d.cmd("AUTH LOGIN")
        d.expect(334)
        d.cmd(b64(USER))
        d.expect(334)
        d.cmd(b64("nope"))
        r = d.expect(535, "5.7.8")
        assert r.text == plain.text


def test_auth_plain_authzid(outpost_module):
    """AUTH PLAIN with an authorization identity other than the user gets 535; the same identity is fine."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.ehlo()
        r = d.auth_plain(authzid="bob@example.test")
        assert r.code == 535 and r.enhanced == "5.7.8", r
        r = d.auth_plain(authzid=USER)
        assert r.code == 235 and r.enhanced == "2.7.0", r


def test_auth_plain_empty_challenge(outpost_module):
    """AUTH PLAIN without an initial response gets 334 and accepts the credentials on the next line."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.ehlo()
        d.cmd("AUTH PLAIN")
        d.expect(334)
        d.cmd(b64("\0%s\0%s" % (USER, PASSWORD)))
        d.expect(235, "2.7.0")
        d.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)))
        d.expect(503, "5.5.1")


def test_auth_login_happy(outpost_module):
    """AUTH LOGIN (username, password prompts) logs in and mail can be sent."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.ehlo()
        d.cmd("AUTH LOGIN")
        r = d.expect(334)
        assert base64.b64decode(r.lines[0]).lower().startswith(b"username"), r
        d.cmd(b64(USER))
        r = d.expect(334)
        assert base64.b64decode(r.lines[0]).lower().startswith(b"password"), r
        d.cmd(b64(PASSWORD))
        d.expect(235, "2.7.0")
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<bob@example.org>")
        d.expect(250, "2.1.5")
        d.cmd("DATA")
        d.expect(354)
        d.send(simple_message("auth login") + b".\r\n")
        r = d.expect(250, "2.0.0")
        assert r.text.startswith("2.0.0 OK ")


def test_auth_cancel(outpost_module):
    """'*' in place of an AUTH response cancels with 501 5.7.0, at either LOGIN prompt and for PLAIN."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.ehlo()
        d.cmd("AUTH LOGIN")
        d.expect(334)
        d.cmd("*")
        d.expect(501, "5.7.0")
        d.cmd("AUTH LOGIN")
        d.expect(334)
        d.cmd(b64(USER))
        d.expect(334)
        d.cmd("*")
        d.expect(501, "5.7.0")
        d.cmd("AUTH PLAIN")
        d.expect(334)
        d.cmd("*")
        d.expect(501, "5.7.0")
        d.login()


def test_auth_undecodable(outpost_module):
    """AUTH PLAIN with '=' (empty) or bad base64 or a wrong structure gets 501; unknown mechanism 504."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.ehlo()
        d.cmd("AUTH PLAIN =")
        d.expect(501)
        d.cmd("AUTH PLAIN !!!not-base64!!!")
        d.expect(501, "5.5.2")
        d.cmd("AUTH PLAIN " + b64("no-nul-separators"))
        d.expect(501, "5.5.2")
        d.cmd("AUTH LOGIN")
        d.expect(334)
        d.cmd("%%%")
        d.expect(501, "5.5.2")
        d.cmd("AUTH CRAM-MD5")
        d.expect(504, "5.5.4")
        d.login()


def test_auth_during_transaction(outpost_module):
    """AUTH when already authenticated gets 503 5.5.1."""
    o = outpost_module
    with o.session() as d:
        d.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (USER, PASSWORD)))
        d.expect(503, "5.5.1")


def test_starttls_injection(outpost_module):
    """Plaintext pipelined after STARTTLS is discarded, not run inside TLS (CVE-2011-0411)."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.ehlo()
        d.send(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<%s>\r\n" % USER.encode())
        r = d.expect(220, "2.0.0")
        assert d.buf == b"", "server answered pipelined plaintext: %r" % d.buf
        d._wrap()
        d.cmd("EHLO client.example.test")
        r = d.expect(250)
        assert len(r.lines) > 1 and "at your service" in r.lines[0], \
            "first reply after the handshake is not EHLO's: %r" % r
        d.cmd("NOOP")
        r = d.expect(250, "2.0.0")
        assert len(r.lines) == 1, r
        d.cmd("QUIT")
        d.expect(221, "2.0.0")


def test_helo_and_ehlo_syntax(outpost_module):
    """HELO works; EHLO/HELO without a name get 501 5.5.4; MAIL before EHLO gets 503 5.5.1."""
    o = outpost_module
    with o.dialog("implicit") as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(503, "5.5.1")
        d.cmd("EHLO")
        d.expect(501, "5.5.4")
        d.cmd("HELO")
        d.expect(501, "5.5.4")
        d.cmd("HELO client.example.test")
        r = d.expect(250)
        assert r.lines[0].startswith("localhost"), r
        d.login()
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")


def test_simple_commands(outpost_module):
    """VRFY 252, EXPN 502, HELP 214, NOOP/RSET 250, arguments to RSET/QUIT/DATA 501, QUIT 221 and close."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.ehlo()
        d.cmd("VRFY alice@example.test")
        d.expect(252, "2.5.0")
        d.cmd("VRFY nobody")
        d.expect(252, "2.5.0")
        d.cmd("EXPN staff")
        d.expect(502, "5.5.1")
        d.cmd("HELP")
        d.expect(214, "2.0.0")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
        d.cmd("RSET")
        d.expect(250, "2.0.0")
        d.cmd("RSET x")
        d.expect(501, "5.5.4")
        d.cmd("QUIT x")
        d.expect(501, "5.5.4")
        d.cmd("noop")
        d.expect(250, "2.0.0")
        d.cmd("QUIT")
        d.expect(221, "2.0.0")
        assert d.wait_closed() == b""


def test_rset_clears_transaction(outpost_module):
    """RSET drops the sender and recipients: RCPT after RSET gets 503 5.5.1."""
    o = outpost_module
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(503, "5.5.1")
        d.cmd("RCPT TO:<bob@example.org>")
        d.expect(250, "2.1.5")
        d.cmd("RSET")
        d.expect(250, "2.0.0")
        d.cmd("RCPT TO:<bob@example.org>")
        d.expect(503, "5.5.1")
        d.cmd("DATA")
        d.expect(503, "5.5.1")


def test_pipelining(outpost_module):
    """A whole pipelined transaction in one write gets every reply in order."""
    o = outpost_module
    before = set(o.queue_ids())
    with o.session() as d:
        d.send(b"MAIL FROM:<%s>\r\nRCPT TO:<bob@example.org>\r\n"
               b"RCPT TO:<carol@example.net>\r\nDATA\r\n" % USER.encode())
        d.expect(250, "2.1.0")
        d.expect(250, "2.1.5")
        d.expect(250, "2.1.5")
        d.expect(354)
        d.send(simple_message("pipelined") + b".\r\nNOOP\r\nQUIT\r\n")
        r = d.expect(250, "2.0.0")
        qid = r.text.split()[-1]
        d.expect(250, "2.0.0")
        d.expect(221, "2.0.0")
    assert set(o.queue_ids()) - before == {qid}

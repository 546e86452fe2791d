"""Bad input: long lines, bare CR/LF, NUL, out-of-order commands, syntax errors, limits.

Every case is followed by a check that the session (or a new one) still
works and the daemon is alive."""
import socket
import time

import pytest

from conftest import (Closed, RCPT, USER, is_asan_build, simple_message)

OUTPOST_OVERRIDES = {"limits": {"max_recipients": "5",
                                "max_message_size": "100000",
                                "max_errors": "50",
                                "auth_failures": "1000"}}


def session_or_new_works(o, d, mode="plain"):
    """After an error: either the same session still answers NOOP, or it
    was closed (with a 421 first); in both cases a new session works."""
    try:
        d.cmd("NOOP")
        r = d.reply()
        if r.code == 421:
            d.wait_closed()
        else:
            assert r.code == 250 and r.enhanced == "2.0.0", r
    except (Closed, BrokenPipeError, ConnectionResetError):
        pass
    d.close()
    assert o.alive()
    assert o.noop_works(mode)


def test_long_command_line(outpost_module):
    """A command line over 1,000 octets gets 500 5.5.2 and the next NOOP works in the same session."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.ehlo()
        d.send(b"NOOP " + b"x" * 1200 + b"\r\n")
        d.expect(500, "5.5.2")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
        # Long enough to hide a command after byte 1000: it must not run.
        d.send(b"MAIL FROM:<" + b"a" * 1100 + b">\r\nNOOP\r\n")
        d.expect(500, "5.5.2")
        d.expect(250, "2.0.0")


def test_long_command_after_auth(outpost_module):
    """After AUTH a 5,000-octet command line is still refused with 500 5.5.2 and the session goes on."""
    o = outpost_module
    with o.session() as d:
        d.send(b"RCPT TO:<" + b"b" * 5000 + b"@example.org>\r\n")
        d.expect(500, "5.5.2")
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")


def test_1000_octet_line_accepted(outpost_module):
    """A command line of exactly 1,000 octets with CRLF is not 'too long'."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.ehlo()
        line = b"VRFY " + b"x" * (1000 - 7)
        assert len(line) + 2 == 1000
        d.send(line + b"\r\n")
        d.expect(252, "2.5.0")


def _send_bounded(d, total, chunk=65536, limit_s=30):
    """Sends up to total bytes without a line end; stops early when the
    server closes or stops reading.  Returns the number of bytes sent."""
    sent = 0
    deadline = time.monotonic() + limit_s
    d.sock.settimeout(10)
    blob = b"A" * chunk
    for _ in range(total // chunk + 1):
        if sent >= total or time.monotonic() > deadline:
            break
        try:
            d.sock.sendall(blob)
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            break
        sent += chunk
    return sent


def test_endless_line_before_auth(outpost_module):
    """1 MiB without a line end before AUTH: the server answers 500 and/or closes, and stays responsive."""
    o = outpost_module
    d = o.dialog("plain")
    d.ehlo()
    _send_bounded(d, 1 << 20)
    try:
        d.send(b"\r\n")
        r = d.reply()
        assert r.code in (500, 421), r
    except (Closed, BrokenPipeError, ConnectionResetError, OSError):
        pass
    d.close()
    assert o.alive()
    assert o.noop_works()


def test_endless_line_not_buffered(outpost_module):
    """16 MiB without a line end after AUTH is discarded, not buffered: daemon memory stays flat."""
    o = outpost_module
    d = o.session()
    d.cmd("NOOP")
    d.expect(250)
    rss0 = o.rss_kb()
    sent = _send_bounded(d, 16 << 20)
    rss1 = o.rss_kb()
    try:
        d.send(b"\r\nNOOP\r\n")
        r = d.reply()
        assert r.code in (500, 421), r
        if r.code == 500:
            assert r.enhanced == "5.5.2", r
            d.expect(250, "2.0.0")
    except (Closed, BrokenPipeError, ConnectionResetError, OSError):
        pass
    d.close()
    assert o.alive()
    assert o.noop_works()
    if not is_asan_build() and sent >= (8 << 20):
        grew = rss1 - rss0
        assert grew < sent // 1024 // 2, \
            "daemon RSS grew by %d KiB while we sent %d KiB in one line" % (grew, sent // 1024)


@pytest.mark.parametrize("payload", [
    b"NOOP\nNOOP\r\n",          # bare LF inside a line
    b"NOOP\rNOOP\r\n",          # bare CR inside a line
    b"NO\rOP\r\n",
    b"EHLO a\nMAIL FROM:<alice@example.test>\r\n",
], ids=["lf", "cr", "cr-mid", "lf-smuggle"])
def test_bare_cr_lf_in_command(outpost_module, payload):
    """A bare CR or LF in a command line gets exactly one 500 5.5.2 and is never a line end."""
    o = outpost_module
    d = o.dialog("plain")
    d.ehlo()
    d.send(payload)
    d.expect(500, "5.5.2")
    session_or_new_works(o, d)


def test_nul_in_command(outpost_module):
    """A NUL byte in a command line gets 500 5.5.2."""
    o = outpost_module
    d = o.dialog("plain")
    d.ehlo()
    d.send(b"NO\x00OP\r\n")
    d.expect(500, "5.5.2")
    session_or_new_works(o, d)
    d = o.session()
    d.send(b"MAIL FROM:<alice@example.test>\x00 SIZE=10\r\n")
    d.expect(500, "5.5.2")
    session_or_new_works(o, d)


def test_out_of_order(outpost_module):
    """RCPT before MAIL and DATA before RCPT get 503 5.5.1; the transaction then works."""
    o = outpost_module
    with o.session() as d:
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(503, "5.5.1")
        d.cmd("DATA")
        d.expect(503, "5.5.1")
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("DATA")
        d.expect(503, "5.5.1")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        d.cmd("DATA x")
        d.expect(501, "5.5.4")
        d.cmd("DATA")
        d.expect(354)
        d.send(simple_message("order") + b".\r\n")
        d.expect(250, "2.0.0")


def test_too_many_recipients(outpost_module):
    """With max_recipients=5 the 6th RCPT gets 452 4.5.3 and the message goes to the first 5."""
    o = outpost_module
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        for i in range(5):
            d.cmd("RCPT TO:<r%d@example.org>" % i)
            d.expect(250, "2.1.5")
        d.cmd("RCPT TO:<r5@example.org>")
        d.expect(452, "4.5.3")
        d.cmd("RCPT TO:<r6@example.org>")
        d.expect(452, "4.5.3")
        d.cmd("DATA")
        d.expect(354)
        d.send(simple_message("five") + b".\r\n")
        r = d.expect(250, "2.0.0")
        qid = r.text.split()[-1]
    env, _ = o.stored(qid)
    for i in range(5):
        assert b"r%d@example.org" % i in env
    assert b"r5@example.org" not in env and b"r6@example.org" not in env


@pytest.mark.parametrize("arg", [
    "alice@example.test",              # missing brackets
    "<alice@example.test",             # unterminated
    "<ali ce@example.test>",           # space in the local part
    "<alice@exa mple.test>",           # space in the domain
    "<alice@example..test>",           # empty label
    "<alice@-example.test>",           # label starting with a hyphen
    "<alice@>",                        # no domain
    "<@example.test>",                 # no local part
    "<alice@@example.test>",
])
def test_mail_from_syntax(outpost_module, arg):
    """MAIL FROM with bad address syntax gets 501 5.1.7 and the session goes on."""
    o = outpost_module
    with o.session() as d:
        d.cmd("MAIL FROM:" + arg)
        d.expect(501, "5.1.7")
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")


@pytest.mark.parametrize("arg", [
    "bob@example.org",
    "<bob@example.org",
    "<bob@exa mple.org>",
    "<bob@example..org>",
    "<bob@@example.org>",
    "<@example.org>",
    "<bob@>",
])
def test_rcpt_to_syntax(outpost_module, arg):
    """RCPT TO with bad address syntax gets 501 5.1.3 and the session goes on."""
    o = outpost_module
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:" + arg)
        d.expect(501, "5.1.3")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")


def test_local_part_length(outpost_module):
    """A 64-octet local part is accepted; 65 octets get 501 (5.1.3 in RCPT)."""
    o = outpost_module
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s@example.org>" % ("a" * 64))
        d.expect(250, "2.1.5")
        d.cmd("RCPT TO:<%s@example.org>" % ("a" * 65))
        d.expect(501, "5.1.3")
        d.cmd("RSET")
        d.expect(250)
        d.cmd("MAIL FROM:<%s@example.test>" % ("a" * 65))
        d.expect(501)


def test_unknown_mail_parameter(outpost_module):
    """An unknown or malformed MAIL parameter gets 555 5.5.4."""
    o = outpost_module
    with o.session() as d:
        for p in ("FOO=BAR", "SIZE=abc", "BODY=9BIT"):
            d.cmd("MAIL FROM:<%s> %s" % (USER, p))
            d.expect(555, "5.5.4")
        d.cmd("MAIL FROM:<%s> SIZE=1000 BODY=8BITMIME" % USER)
        d.expect(250, "2.1.0")


def test_size_parameter_over_limit(outpost_module):
    """MAIL with SIZE= over max_message_size gets 552 5.3.4; SIZE under it is fine."""
    o = outpost_module
    with o.session() as d:
        ext = d.ehlo()
        assert "SIZE 100000" in ext, ext
        d.cmd("MAIL FROM:<%s> SIZE=200000" % USER)
        d.expect(552, "5.3.4")
        d.cmd("MAIL FROM:<%s> SIZE=50000" % USER)
        d.expect(250, "2.1.0")


def test_message_over_size(outpost_module):
    """A message over max_message_size gets 552 5.2.3 after the dot and nothing is stored."""
    o = outpost_module
    before = set(o.queue_ids())
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        d.cmd("DATA")
        d.expect(354)
        line = b"x" * 76 + b"\r\n"
        d.send(simple_message("big", line * 2600) + b".\r\n")   # ~200 KB
        d.expect(552, "5.2.3")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
        # The session is still usable for a normal message.
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        d.cmd("DATA")
        d.expect(354)
        d.send(simple_message("small") + b".\r\n")
        r = d.expect(250, "2.0.0")
        qid = r.text.split()[-1]
    assert set(o.queue_ids()) - before == {qid}
    assert o.tmp_files() == []


def _data_session(o):
    d = o.session()
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.cmd("DATA")
    d.expect(354)
    return d


@pytest.mark.parametrize("body,why", [
    (b"line one\nline two\r\n", "bare LF"),
    (b"line one\rline two\r\n", "bare CR"),
    (b"x" * 999 + b"\r\n", "999-octet line"),
    (b"nul \x00 here\r\n", "NUL"),
], ids=["bare-lf", "bare-cr", "999", "nul"])
def test_bad_data(outpost_module, body, why):
    """Bare LF/CR, a 999-octet line or NUL in DATA gets 550 5.6.0 and nothing is stored."""
    o = outpost_module
    before = set(o.queue_ids())
    d = _data_session(o)
    d.send(simple_message(why, body) + b".\r\n")
    d.expect(550, "5.6.0")
    session_or_new_works(o, d, "implicit")
    assert set(o.queue_ids()) == before


def test_998_octet_line_accepted(outpost_module):
    """A 998-octet line (the RFC 5322 maximum) is accepted and stored intact."""
    o = outpost_module
    d = _data_session(o)
    line = b"y" * 998 + b"\r\n"
    msg = simple_message("998", line)
    d.send(msg + b".\r\n")
    r = d.expect(250, "2.0.0")
    d.close()
    _, stored = o.stored(r.text.split()[-1])
    assert stored.endswith(b"\r\n\r\n" + line)


def test_http_request_closes(outpost_module):
    """An HTTP request line ('GET / HTTP/1.1') closes the connection without a reply."""
    o = outpost_module
    for line in (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
                 b"POST /x HTTP/1.0\r\n\r\n"):
        d = o.dialog("plain")
        try:
            d.send(line)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = d.wait_closed()
        assert data == b"", "server replied to HTTP: %r" % data
        d.close()
    assert o.noop_works()


def test_unknown_command(outpost_module):
    """An unknown command gets 502 5.5.1 and the session continues."""
    o = outpost_module
    with o.dialog("plain") as d:
        d.cmd("FOOBAR")
        d.expect(502, "5.5.1")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")


@pytest.mark.outpost_conf({"limits": {"max_errors": "5"}})
def test_errors_until_421(outpost_setup):
    """Repeated unknown commands end with 421 and a close (max_errors=5), then a new client is served."""
    o = outpost_setup
    d = o.dialog("plain")
    got421 = False
    for i in range(12):
        try:
            d.cmd("XYZZY%d" % i)
            r = d.reply(timeout=20)
        except (Closed, BrokenPipeError, ConnectionResetError):
            break
        if r.code == 421:
            assert r.enhanced == "4.7.0", r
            got421 = True
            break
        assert r.code in (500, 502), r
    assert got421, "no 421 after 12 unknown commands with max_errors=5"
    assert i <= 6, "421 came only after %d errors" % (i + 1)
    d.wait_closed(timeout=20)
    d.close()
    assert o.noop_works()

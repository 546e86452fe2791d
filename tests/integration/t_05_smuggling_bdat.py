"""SMTP smuggling defence (DATA and BDAT) and CHUNKING (RFC 3030)."""
import pytest

from conftest import RCPT, USER, Closed, simple_message

OUTPOST_OVERRIDES = {"limits": {"max_errors": "100", "auth_failures": "1000"}}

SMUGGLED = (b"MAIL FROM:<alice@example.test>\r\n"
            b"RCPT TO:<bob@example.org>\r\n"
            b"DATA\r\n"
            b"smuggled\r\n")


def start_data(d):
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.cmd("DATA")
    d.expect(354)


def sync_noop(d):
    """The next reply must be NOOP's own: proves no smuggled command ran.
    A server that chose to close after the error passes too (421 first)."""
    try:
        d.cmd("NOOP")
        r = d.reply()
    except (Closed, BrokenPipeError, ConnectionResetError):
        return
    if r.code == 421:
        d.wait_closed()
        return
    assert r.code == 250 and r.enhanced == "2.0.0" and len(r.lines) == 1, \
        "reply after the refused data is not NOOP's: %r" % r


@pytest.mark.parametrize("variant", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\r", b"\r\n.\n"],
                         ids=["lf.lf", "cr.cr", "lf.crlf", "crlf.cr", "crlf.lf"])
def test_smuggling_data(outpost_module, variant):
    """A fake end-of-data (bare CR/LF variants) followed by a second transaction yields one 550 5.6.0 and no message at all."""
    o = outpost_module
    before = set(o.queue_ids())
    with o.session() as d:
        start_data(d)
        d.send(simple_message("smuggle", b"innocent body") + variant +
               SMUGGLED + b"\r\n.\r\n")
        d.expect(550, "5.6.0")
        sync_noop(d)
    assert set(o.queue_ids()) == before, "a message was stored"
    assert o.tmp_files() == []
    assert o.alive()


def test_dot_lines_not_end_of_data(outpost_module):
    """Lines '..' and '.x' inside DATA do not end the message; they are unstuffed and stored."""
    o = outpost_module
    with o.session() as d:
        start_data(d)
        d.send(simple_message("dots", b"..\r\n..x\r\n.y\r\n") + b".\r\n")
        r = d.expect(250, "2.0.0")
        qid = r.text.split()[-1]
        sync_noop(d)
    _, msg = o.stored(qid)
    assert msg.endswith(b"\r\n\r\n.\r\n.x\r\ny\r\n"), msg[-60:]


def bdat(d, data, last=False):
    d.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)


def test_bdat_two_chunks(outpost_module):
    """BDAT n then BDAT m LAST gets '250 2.0.0 OK <qid>' and the stored message is the chunks' concatenation."""
    o = outpost_module
    msg = simple_message("bdat", b".not stuffed\r\nsecond line\r\nend\r\n")
    cut = len(msg) // 2 + 3
    c1, c2 = msg[:cut], msg[cut:]
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        bdat(d, c1)
        r = d.expect(250, "2.0.0")
        assert ("%d octets" % len(c1)) in r.text, r
        bdat(d, c2, last=True)
        r = d.expect(250, "2.0.0")
        assert r.text.startswith("2.0.0 OK ")
        qid = r.text.split()[-1]
    _, stored = o.stored(qid)
    assert stored.endswith(msg), "stored %r\nsent %r" % (stored, msg)
    added = stored[:-len(msg)]
    assert b"Received:" in added and added.endswith(b"\r\n"), added


def test_bdat_crlf_split_across_chunks(outpost_module):
    """A CRLF split between two BDAT chunks (CR at the end of one, LF at the start of the next) is a normal line end."""
    o = outpost_module
    msg = simple_message("split", b"abc\r\ndef\r\n")
    i = msg.index(b"abc\r\n") + 4     # cut between CR and LF
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        bdat(d, msg[:i])
        d.expect(250, "2.0.0")
        bdat(d, msg[i:], last=True)
        r = d.expect(250, "2.0.0")
        qid = r.text.split()[-1]
    _, stored = o.stored(qid)
    assert stored.endswith(b"\r\n\r\nabc\r\ndef\r\n")


def test_bdat_zero_last(outpost_module):
    """'BDAT 0 LAST' after data chunks ends the message."""
    o = outpost_module
    msg = simple_message("zero")
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        bdat(d, msg)
        d.expect(250, "2.0.0")
        bdat(d, b"", last=True)
        r = d.expect(250, "2.0.0")
        assert r.text.startswith("2.0.0 OK ")


def test_bdat_without_mail(outpost_module):
    """BDAT without MAIL gets 503 5.5.1 and its chunk (which looks like commands) is thrown away unexecuted."""
    o = outpost_module
    with o.session() as d:
        payload = b"QUIT\r\n"
        bdat(d, payload)
        d.expect(503, "5.5.1")
        d.cmd("NOOP")
        r = d.expect(250, "2.0.0")
        assert len(r.lines) == 1
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        payload = b"RSET\r\nMAIL FROM:<alice@example.test>\r\n"
        bdat(d, payload)
        d.expect(503, "5.5.1")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")


def test_data_after_bdat(outpost_module):
    """DATA after BDAT in the same transaction gets 503 5.5.1."""
    o = outpost_module
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        bdat(d, b"Subject: x\r\n")
        d.expect(250, "2.0.0")
        d.cmd("DATA")
        d.expect(503, "5.5.1")


def test_bdat_bad_argument(outpost_module):
    """A malformed BDAT size gets 501 5.5.4 and the connection is closed (the chunk size is unknown)."""
    o = outpost_module
    d = o.session()
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.send(b"BDAT abc\r\nQUIT\r\n")
    d.expect(501, "5.5.4")
    rest = d.wait_closed()
    assert b"221" not in rest, rest
    d.close()
    assert o.alive()


@pytest.mark.parametrize("content", [
    b"Subject: x\r\n\r\nhello\nMAIL FROM:<alice@example.test>\r\n",
    b"Subject: x\r\n\r\nhello\r.\rRSET\r\n",
    b"Subject: x\r\n\r\nhello\r\n.\nDATA\r\n",
], ids=["lf", "cr", "crlf.lf"])
def test_bdat_smuggling(outpost_module, content):
    """BDAT content with a bare CR/LF is refused at LAST with 550 5.6.0; the chunk bytes never run as commands."""
    o = outpost_module
    before = set(o.queue_ids())
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        bdat(d, content)
        r = d.reply()
        assert (r.code == 250 and r.enhanced == "2.0.0" and "OK" not in r.text) \
            or (r.code == 550 and r.enhanced == "5.6.0"), r
        bdat(d, b"more\r\n", last=True)
        r = d.reply()
        assert r.code == 550 and r.enhanced == "5.6.0", r
        sync_noop(d)
    assert set(o.queue_ids()) == before
    assert o.tmp_files() == []


def test_bdat_long_line(outpost_module):
    """A 999-octet line in BDAT content is refused with 550 5.6.0 (BDAT content is relayed with DATA)."""
    o = outpost_module
    before = set(o.queue_ids())
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        bdat(d, simple_message("long", b"z" * 999 + b"\r\n"), last=True)
        d.expect(550, "5.6.0")
        sync_noop(d)
    assert set(o.queue_ids()) == before

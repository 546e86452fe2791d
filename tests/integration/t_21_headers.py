"""Header hygiene against the real daemon: every broken header section
gets a clear 550 5.6.0 (552 5.3.4 when too large), nothing is queued, and
the session goes on to accept a good message."""
import pytest

from conftest import RCPT, USER, simple_message

OUTPOST_OVERRIDES = {"limits": {"max_errors": "100", "auth_failures": "1000"}}

GOOD = simple_message(subject="good after bad")


def transact(d, msg, opts=""):
    """MAIL/RCPT/DATA with msg (dot-stuffed here); returns the final reply."""
    d.cmd("MAIL FROM:<%s>%s" % (USER, opts))
    d.expect(250)
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250)
    d.cmd("DATA")
    d.expect(354)
    lines = msg.split(b"\r\n")
    stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln for ln in lines)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    d.send(stuffed + b".\r\n")
    return d.reply()


BAD = [
    ("no From", b"To: bob@example.org\r\nSubject: x\r\n\r\nbody\r\n", "no From:"),
    ("two From fields", b"From: alice@example.test\r\nFrom: alice@example.test\r\n"
     b"To: bob@example.org\r\n\r\nbody\r\n", "2 From: header fields"),
    ("several authors, no Sender", b"From: alice@example.test, dave@example.test\r\n"
     b"To: bob@example.org\r\n\r\nbody\r\n", "Sender: header field"),
    ("several authors, foreign Sender", b"From: alice@example.test, dave@example.test\r\n"
     b"Sender: dave@example.test\r\nTo: bob@example.org\r\n\r\nbody\r\n", "not the sending account"),
    ("two Sender", b"From: alice@example.test\r\nSender: alice@example.test\r\n"
     b"Sender: alice@example.test\r\n\r\nbody\r\n", "Sender: header fields"),
    ("broken From", b"From: alice@\r\nTo: bob@example.org\r\n\r\nbody\r\n", "From: header"),
    ("empty From", b"From: \r\nTo: bob@example.org\r\n\r\nbody\r\n", "From: header"),
    ("From without @", b"From: Alice\r\n\r\nbody\r\n", "From: header"),
    ("unclosed angle", b"From: Alice <alice@example.test\r\n\r\nbody\r\n", "From: header"),
    ("broken To", b"From: alice@example.test\r\nTo: bob@example.org carol@example.net\r\n\r\nb\r\n",
     "To: header"),
    ("unclosed comment in Cc", b"From: alice@example.test\r\nCc: (oops bob@example.org\r\n\r\nb\r\n",
     "Cc: header"),
    ("unclosed quote in Reply-To", b"From: alice@example.test\r\nReply-To: \"Bob <b@example.org>\r\n\r\nb\r\n",
     "Reply-To: header"),
    ("broken Bcc", b"From: alice@example.test\r\nBcc: <<>>\r\n\r\nb\r\n", "Bcc: header"),
    ("header without colon", b"From: alice@example.test\r\nThis is not a header\r\n\r\nbody\r\n",
     "line 2 is not a header field"),
    ("body without separator", b"From: alice@example.test\r\nHello Bob, this is the body.\r\n",
     "line 2 is not a header field"),
    ("starts with continuation", b" folded\r\nFrom: alice@example.test\r\n\r\nbody\r\n",
     "continuation"),
    ("empty field name", b"From: alice@example.test\r\n: value\r\n\r\nbody\r\n", "empty field name"),
    ("8-bit header without SMTPUTF8", "From: alice@example.test\r\nSubject: grüße\r\n\r\nb\r\n".encode(),
     "SMTPUTF8"),
    ("empty message", b"", "no From:"),
]


@pytest.mark.parametrize("name,msg,words", BAD, ids=[b[0] for b in BAD])
def test_bad_header_refused(outpost_module, name, msg, words):
    """A broken header section gets 550 5.6.0 with plain words, nothing is queued, and the next message in the session is accepted."""
    o = outpost_module
    before = o.queue_ids()
    with o.session() as d:
        r = transact(d, msg)
        assert r.code == 550 and r.enhanced == "5.6.0", (name, r)
        assert words in r.text, (name, r.text)
        assert o.queue_ids() == before
        r = transact(d, GOOD)
        assert r.code == 250 and r.enhanced == "2.0.0", r
    assert o.alive()


def test_invalid_utf8_header_with_smtputf8(outpost_module):
    """With SMTPUTF8, a header that is not valid UTF-8 is refused (550 5.6.0); valid UTF-8 is accepted."""
    o = outpost_module
    with o.session() as d:
        r = transact(d, b"From: alice@example.test\r\nSubject: caf\xe9\r\n\r\nb\r\n", " SMTPUTF8")
        assert r.code == 550 and r.enhanced == "5.6.0" and "UTF-8" in r.text, r
        r = transact(d, "From: alice@example.test\r\nSubject: café\r\n\r\nb\r\n".encode(), " SMTPUTF8")
        assert r.code == 250, r


def test_bad_header_in_bdat(outpost_module):
    """BDAT content with no From gets 550 5.6.0 at LAST, and the session goes on."""
    o = outpost_module
    msg = b"To: bob@example.org\r\nSubject: bdat\r\n\r\nbody\r\n"
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250)
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250)
        d.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        r = d.reply()
        assert r.code == 550 and r.enhanced == "5.6.0" and "From:" in r.text, r
        r = transact(d, GOOD)
        assert r.code == 250, r


def test_header_section_too_large(outpost_module):
    """A header section over 1 MiB gets 552 5.3.4 (the body limit is far away) and nothing is queued."""
    o = outpost_module
    before = o.queue_ids()
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 900) for i in range(1200))
    msg = b"From: alice@example.test\r\n" + filler + b"\r\nbody\r\n"
    with o.session() as d:
        r = transact(d, msg)
        assert r.code == 552 and r.enhanced == "5.3.4" and "header section" in r.text, r
        r = transact(d, GOOD)
        assert r.code == 250, r
    assert len(o.queue_ids()) == len(before) + 1


def test_large_header_under_limit_accepted(outpost_module):
    """A 900 KiB header section (under the 1 MiB bound) is accepted and stored byte for byte."""
    o = outpost_module
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 900) for i in range(1000))
    msg = b"From: alice@example.test\r\n" + filler + b"\r\nbody\r\n"
    qid = o.send_raw(msg)
    _env, stored = o.stored(qid)
    assert stored.endswith(msg[len(b"From: alice@example.test\r\n"):])


@pytest.mark.parametrize("name,raw,text", [
    ("CR without LF", b"From: alice@example.test\r\n\r\nbad\rline\r\n", "bare CR or LF"),
    ("LF without CR", b"From: alice@example.test\nTo: bob@example.org\r\n\r\nb\r\n", "bare CR or LF"),
    ("NUL byte", b"From: alice@example.test\r\n\r\nnul\x00here\r\n", "NUL"),
    ("2000-octet line", b"From: alice@example.test\r\n\r\n" + b"x" * 2000 + b"\r\n", "Line too long"),
    ("2000-octet header line", b"From: alice@example.test\r\nSubject: " + b"x" * 2000 + b"\r\n\r\nb\r\n",
     "Line too long"),
])
def test_malformed_content_refused(outpost_module, name, raw, text):
    """Bare CR/LF, NUL and over-long lines (header or body) get 550 5.6.0 and are not queued."""
    o = outpost_module
    before = o.queue_ids()
    with o.session() as d:
        r = transact(d, raw)
        assert r.code == 550 and r.enhanced == "5.6.0" and text in r.text, (name, r)
    assert o.queue_ids() == before
    assert o.noop_works("plain")


def test_several_authors_with_own_sender_accepted(outpost_module):
    """From with two addresses plus Sender: the authenticated account is accepted."""
    o = outpost_module
    msg = (b"From: alice@example.test, Dave <dave@example.test>\r\n"
           b"Sender: Alice <alice@example.test>\r\nTo: bob@example.org\r\n\r\nb\r\n")
    with o.session() as d:
        r = transact(d, msg)
        assert r.code == 250, r


@pytest.mark.parametrize("hdr", [
    b"From: \"Smith, Alice\" <alice@example.test>",
    b"From: alice@example.test (Alice Smith)",
    b"From: <alice@example.test>",
    b"From: Alice <@relay.example:alice@example.test>",
    b"From: \"alice\"@example.test",
    b"From: alice@example.test\r\nTo: bob@[127.0.0.1]",
    b"From: Alice\r\n <alice@example.test>",
    b"From: =?utf-8?q?Al=C3=AEce?= <alice@example.test>",
    b"From: alice@example.test\r\nTo: a@example.org,, b@example.org,\r\nCc: Team: c@example.org, d@example.org;",
    b"From: alice@example.test\r\nBcc:",
    b"From: alice@example.test\r\nTo: undisclosed-recipients:;",
])
def test_valid_address_forms_accepted(outpost_module, hdr):
    """Valid RFC 5322 address forms (quoted names, comments, routes, literals, groups, empty Bcc) are accepted."""
    o = outpost_module
    with o.session() as d:
        r = transact(d, hdr + b"\r\nSubject: ok\r\n\r\nbody\r\n")
        assert r.code == 250, (hdr, r)

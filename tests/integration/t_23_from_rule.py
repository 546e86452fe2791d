"""The sender rule for the From: header (issue 4 with issue 6's header
parser): the author must be the login or one of its aliases, like MAIL
FROM — refused with 553 5.7.1, or rewritten as Gmail does."""
import pytest

from conftest import simple_message

USER = "alice@example.test"
RCPT = "bob@example.org"


def message_from(author, subject="from rule"):
    return (b"From: " + author.encode() + b"\r\n"
            b"To: Bob <bob@example.org>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"\r\nbody\r\n")


def submit(o, data, sender=USER):
    """One message over implicit TLS; returns the DATA reply."""
    with o.dialog("implicit") as d:
        d.ehlo()
        assert d.auth_plain(USER, "correct horse").code == 235
        d.cmd("MAIL FROM:<%s>" % sender)
        d.expect(250)
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250)
        d.cmd("DATA")
        d.expect(354)
        d.send(data + b".\r\n")
        r = d.reply()
        # the session goes on after a refusal
        d.cmd("NOOP")
        d.expect(250)
        return r


def test_from_not_owned_refused(outpost_setup):
    """A From: naming someone else's address is refused with 553 5.7.1 and nothing is queued."""
    o = outpost_setup
    r = submit(o, message_from("Mallory <mallory@example.test>"))
    assert r.code == 553 and r.enhanced == "5.7.1", r
    assert "mallory@example.test" in r.text
    assert o.queue_files() == []


def test_from_owned_and_alias_accepted(outpost_setup):
    """The login itself (any case) and a registered alias are accepted as From:."""
    o = outpost_setup
    assert submit(o, message_from("Alice <ALICE@example.test>")).code == 250
    assert o.cli("user", "alias", "add", USER, "sales@example.test").returncode == 0
    assert submit(o, message_from("Sales <sales@example.test>")).code == 250
    assert len(o.queue_files()) == 2


@pytest.mark.outpost_conf({"accounts": {"sender_rule": "rewrite",
                                        "rewrite_header": "X-Original-From"}})
def test_from_rewritten(outpost_setup):
    """In rewrite mode the From: becomes the login and the original is kept in the configured header."""
    o = outpost_setup
    r = submit(o, message_from("Mallory <mallory@example.test>", "rw"))
    assert r.code == 250, r
    qid = r.text.split()[-1]
    _env, msg = o.stored(qid)
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nFrom: <alice@example.test>\r\n" in b"\r\n" + head + b"\r\n", head
    assert b"X-Original-From: Mallory <mallory@example.test>\r\n" in head, head
    assert head.count(b"\r\nFrom:") + head.startswith(b"From:") == 1

"""
Account security (issue 4), the last two pieces:

- a spike of hard bounces of a user's mail puts the user on hold, as a
  quota hold does ([limits] hold_after_bounces in bounce_window): MAIL
  gets 550 5.7.1, the log says "quota: HOLD user=..., reason=bounces,
  count=N", `outpost user release` lifts it.  Bounces of a null-sender
  message, of mail from a trusted network and expiries in the queue do
  not count.
- a message counts against the daily/hourly quota once it is queued, not
  when DATA/BDAT starts: one refused at the end of the data is free.

Delivery goes to the scripted server of dlvtest.py through a loopback DNS
server; it answers 550 for recipients named bad*.
"""
import re

import pytest

import conftest
from conftest import USER, Dialog, simple_message, wait_until
from dlvtest import ScriptedSMTP, ZoneDNS, delivery_overrides, wait_log


def zone():
    return {
        "dest.test": [("MX", (10, "mx.dest.test"))],
        "mx.dest.test": [("A", "127.0.0.1")],
        # the sender's domain: DSNs come back to the scripted server
        "example.test": [("MX", (10, "mx.example.test"))],
        "mx.example.test": [("A", "127.0.0.1")],
    }


@pytest.fixture
def dns():
    d = ZoneDNS(zone())
    yield d
    d.stop()


@pytest.fixture
def srv():
    s = ScriptedSMTP()

    def rcpt(addr):
        if addr.startswith("bad"):
            return "550 5.1.1 No such user"
        if addr.startswith("later"):
            return "451 4.2.0 Try again later"
        return "250 2.1.5 OK"

    s.rcpt = rcpt
    yield s
    s.stop()


def submit(d, rcpts, mail_from=USER, msg=None):
    """One transaction on an open dialog; returns the reply that ended it
    (MAIL's when refused, else the one after the data)."""
    d.cmd("MAIL FROM:<%s>" % mail_from)
    r = d.reply()
    if r.code != 250:
        return r
    for a in rcpts:
        d.cmd("RCPT TO:<%s>" % a)
        d.expect(250)
    d.cmd("DATA")
    d.expect(354)
    d.send((msg or simple_message("bounce test")) + b".\r\n")
    return d.reply()


def mail_reply(o):
    """MAIL in a fresh authenticated session."""
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        return d.reply()


def bounced(o, rcpt):
    wait_log(o, re.compile(r": to=<" + re.escape(rcpt) +
                           r">, .*status=bounced"))


def shows(o, text):
    return text in o.cli("user", "show", USER).stdout


def test_bounce_spike_holds_until_release(make_outpost, dns, srv):
    o = make_outpost(conftest.merge_overrides(
        delivery_overrides(dns, srv.port),
        {"limits": {"hold_after_bounces": "3", "bounce_window": "1h"},
         "accounts": {"counter_flush": "1s"}}))
    early = o.session()          # authenticated before the hold
    try:
        with o.session() as d:
            r = submit(d, ["bad1@dest.test", "bad2@dest.test"])
            assert r.code == 250, r
            bounced(o, "bad1@dest.test")
            bounced(o, "bad2@dest.test")
            assert "quota: HOLD" not in o.log_text()
            d.cmd("MAIL FROM:<%s>" % USER)       # two: not yet
            d.expect(250)
            d.cmd("RSET")
            d.expect(250)
            r = submit(d, ["bad3@dest.test", "good@dest.test"])
            assert r.code == 250, r
            wait_log(o, "quota: HOLD user=alice@example.test, "
                        "reason=bounces, count=3")
            # the session that sent them
            d.cmd("MAIL FROM:<%s>" % USER)
            r = d.reply()
            assert r.code == 550 and r.enhanced == "5.7.1", r
            assert "on hold" in r.text
        # a session authenticated before the hold
        early.cmd("MAIL FROM:<%s>" % USER)
        r = early.reply()
        assert r.code == 550 and r.enhanced == "5.7.1", r
    finally:
        early.close()
    # a new login (the hold may or may not be written yet)
    r = mail_reply(o)
    assert r.code == 550 and r.enhanced == "5.7.1", r
    assert wait_until(lambda: shows(o, b"on hold"))
    assert o.log_text().count("quota: HOLD user=") == 1
    # the good recipient was delivered all the same
    assert wait_until(lambda: any("good@dest.test" in m.rcpt_addrs
                                  for m in srv.messages))
    r = o.cli("user", "release", USER)
    assert r.returncode == 0, r
    assert not shows(o, b"on hold")
    r = mail_reply(o)
    assert r.code == 250, r
    # the count started again: one more bounce does not hold
    with o.session() as d:
        assert submit(d, ["bad4@dest.test"]).code == 250
    bounced(o, "bad4@dest.test")
    r = mail_reply(o)
    assert r.code == 250, r
    assert o.log_text().count("quota: HOLD user=") == 1


def test_bounces_that_do_not_count(make_outpost, dns, srv):
    """With hold_after_bounces = 1, none of these holds: a null-sender
    message's bounce, a trusted network's bounce, an expiry.  Then one
    ordinary bounce does (so the setting was live all along)."""
    lan = conftest.free_port()
    o = make_outpost(conftest.merge_overrides(
        delivery_overrides(dns, srv.port, queue_lifetime="3s"),
        {"limits": {"hold_after_bounces": "1", "bounce_window": "1h"},
         "listener lan": {"listen": "127.0.0.1:%d" % lan,
                          "tls": "starttls",
                          "trusted_networks": "127.0.0.1/32"}}))
    # a null reverse path (allowed to a logged-in user)
    with o.session() as d:
        assert submit(d, ["bad-null@dest.test"], mail_from="").code == 250
    bounced(o, "bad-null@dest.test")
    # a printer on the trusted network
    d = Dialog("127.0.0.1", lan, ca=o.ca)
    try:
        d.expect(220)
        d.ehlo()
        d.starttls()
        d.ehlo()
        r = submit(d, ["bad-lan@dest.test"],
                   mail_from="printer@lan.example.test")
        assert r.code == 250, r
    finally:
        d.close()
    bounced(o, "bad-lan@dest.test")
    # deferred until it expires in the queue (4.4.7)
    with o.session() as d:
        assert submit(d, ["later@dest.test"]).code == 250
    wait_log(o, re.compile(r": to=<later@dest\.test>, .*dsn=4\.4\.7, "
                           r"status=bounced"), timeout=30)
    assert "quota: HOLD" not in o.log_text()
    r = mail_reply(o)
    assert r.code == 250, r
    # the control: an ordinary hard bounce holds at once
    with o.session() as d:
        assert submit(d, ["bad-real@dest.test"]).code == 250
    wait_log(o, "quota: HOLD user=alice@example.test, reason=bounces, "
                "count=1")
    r = mail_reply(o)
    assert r.code == 550 and r.enhanced == "5.7.1", r


def test_hold_after_bounces_off(make_outpost, dns, srv):
    o = make_outpost(conftest.merge_overrides(
        delivery_overrides(dns, srv.port),
        {"limits": {"hold_after_bounces": "0"}}))
    with o.session() as d:
        r = submit(d, ["bad%d@dest.test" % i for i in range(5)])
        assert r.code == 250, r
    for i in range(5):
        bounced(o, "bad%d@dest.test" % i)
    assert "quota: HOLD" not in o.log_text()
    assert mail_reply(o).code == 250


# --------------------------------------------------------------------------
# Quotas count accepted messages only

@pytest.mark.outpost_conf({"limits": {"daily_messages": "1",
                                      "max_message_size": "1024"},
                           "accounts": {"counter_flush": "1s"}})
def test_refused_at_end_of_data_does_not_count(outpost_setup):
    o = outpost_setup
    big = simple_message("big", body=(b"x" * 70 + b"\r\n") * 40)
    with o.session() as d:
        # DATA refused at the end (too big)
        r = submit(d, [conftest.RCPT], msg=big)
        assert r.code == 552 and r.enhanced == "5.2.3", r
        # BDAT refused at the end
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250)
        d.cmd("RCPT TO:<%s>" % conftest.RCPT)
        d.expect(250)
        d.send(b"BDAT %d LAST\r\n" % len(big) + big)
        r = d.reply()
        assert r.code == 552, r
        # and a message with a NUL octet
        r = submit(d, [conftest.RCPT],
                   msg=simple_message("nul", body=b"a\x00b\r\n"))
        assert r.code == 550 and r.enhanced == "5.6.0", r
        # none of them counted: the one allowed message still goes
        r = submit(d, [conftest.RCPT])
        assert r.code == 250, r
        r = submit(d, [conftest.RCPT])
        assert r.code == 550 and r.enhanced == "5.4.5", r
    assert wait_until(lambda: shows(o, b"today:   1 messages of 1"))


@pytest.mark.outpost_conf({"limits": {"daily_messages": "2"},
                           "accounts": {"counter_flush": "1s"}})
def test_bdat_counts_once_queued(outpost_setup):
    o = outpost_setup
    msg = simple_message("chunks")
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250)
        d.cmd("RCPT TO:<%s>" % conftest.RCPT)
        d.expect(250)
        d.send(b"BDAT %d\r\n" % 10 + msg[:10])
        d.expect(250)
        d.send(b"BDAT %d LAST\r\n" % (len(msg) - 10) + msg[10:])
        r = d.reply()
        assert r.code == 250, r
        r = submit(d, [conftest.RCPT])
        assert r.code == 250, r
        r = submit(d, [conftest.RCPT])
        assert r.code == 550 and r.enhanced == "5.4.5", r
    assert wait_until(lambda: shows(o, b"today:   2 messages of 2"))

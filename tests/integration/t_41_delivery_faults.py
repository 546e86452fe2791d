"""
Delivery engine against hostile or broken remote servers and DNS: each
case of the issue's "bad input and faults" list, plus bounces (DSNs),
delay warnings, expiry, 452 "too many recipients", 8BITMIME, loops and
kill -9 during delivery.  The receiving side is the scripted server of
dlvtest.py (aiosmtpd cannot play these roles); DNS is dnslib.

Retry intervals are seconds via the config; nothing sleeps for long.
"""
import os
import re
import ssl
import time

import pytest

from conftest import USER, simple_message, wait_until
from dlvtest import (ScriptedSMTP, ZoneDNS, delivery_overrides, wait_log,
                     wait_queue_empty)


def zone(mx_addr="127.0.0.1", **extra):
    z = {
        "dest.test": [("MX", (10, "mx.dest.test"))],
        "mx.dest.test": [("A", mx_addr)],
        "other.test": [("MX", (10, "mx.other.test"))],
        "mx.other.test": [("A", "127.0.0.3")],
        # the sender's domain: bounces come back to the scripted server
        "example.test": [("MX", (10, "mx.example.test"))],
        "mx.example.test": [("A", "127.0.0.1")],
        "slow.test": "timeout",
        "nullmx.test": [("MX", (0, "."))],
        "nowhere.test": [("MX", (10, "missing.nowhere.test"))],
    }
    z.update(extra)
    return z


@pytest.fixture
def dns():
    d = ZoneDNS(zone())
    yield d
    d.stop()


@pytest.fixture
def srv():
    s = ScriptedSMTP()
    yield s
    s.stop()


def bounces(srv):
    return [m for m in srv.messages if m.mail_from == ""]


def normal(srv):
    return [m for m in srv.messages if m.mail_from != ""]


def test_connection_refused_defers(make_outpost, dns, srv):
    """mx.other.test is 127.0.0.3, where nothing listens."""
    o = make_outpost(delivery_overrides(dns, srv.port,
                                        retry_interval="60s",
                                        max_retry_interval="60s"))
    qid = o.send_raw(simple_message(), rcpts=["r@other.test"])
    wait_log(o, re.compile(qid + r": to=<r@other\.test>, .*status=deferred"))
    assert qid in o.queue_list()
    assert not srv.messages


def test_server_never_answers_times_out(make_outpost, dns, srv):
    srv.greeting = "hang"
    o = make_outpost(delivery_overrides(dns, srv.port, command_timeout="1s",
                                        retry_interval="60s",
                                        max_retry_interval="60s"))
    qid = o.send_raw(simple_message(), rcpts=["h@dest.test"])
    m = wait_log(o, re.compile(qid + r": to=<h@dest\.test>, .*"
                               r"status=deferred \((.*)\)"))
    assert "greeting" in m.group(1) or "time" in m.group(1).lower()
    assert o.noop_works()


def test_4xx_then_2xx_delivers_exactly_once(make_outpost, dns, srv):
    srv.data_reply = lambda n, msg: ("451 4.3.0 Try again later" if n == 1
                                     else "250 2.0.0 OK")
    o = make_outpost(delivery_overrides(dns, srv.port))
    qid = o.send_raw(simple_message("twice"), rcpts=["t@dest.test"])
    wait_log(o, re.compile(qid + r": to=<t@dest\.test>, .*status=deferred"))
    wait_log(o, re.compile(qid + r": to=<t@dest\.test>, .*status=sent"))
    wait_queue_empty(o)
    time.sleep(0.5)
    assert len(normal(srv)) == 1
    assert srv.data_tries == 2


def test_one_of_three_refused_bounces_one(make_outpost, dns, srv):
    srv.rcpt = lambda a: ("550 5.1.1 No such user" if a.startswith("bad")
                          else "250 2.1.5 OK")
    o = make_outpost(delivery_overrides(dns, srv.port))
    qid = o.send_raw(simple_message("three"),
                     rcpts=["a@dest.test", "bad@dest.test", "c@dest.test"])
    assert wait_until(lambda: bounces(srv) and normal(srv), timeout=20), \
        o.log_text()[-3000:]
    m = normal(srv)[0]
    assert sorted(m.rcpt_addrs) == ["a@dest.test", "c@dest.test"]
    b = bounces(srv)
    assert len(b) == 1 and b[0].rcpt_addrs == [USER]
    body = b[0].data
    assert b"Final-Recipient: rfc822; bad@dest.test" in body
    assert b"a@dest.test" not in body.split(b"Content-Type: text/rfc822-headers")[0]
    assert b"Action: failed" in body and b"Status: 5.1.1" in body
    assert b"Diagnostic-Code: smtp; 550 5.1.1 No such user" in body
    assert b"Content-Type: text/rfc822-headers" in body
    assert b"Subject: three" in body          # the original headers
    assert b"From: Mail Delivery System <MAILER-DAEMON@localhost>" in body
    assert b"Auto-Submitted: auto-replied" in body
    wait_log(o, re.compile(qid + r": to=<bad@dest\.test>, .*dsn=5\.1\.1, "
                           r"status=bounced"))
    wait_queue_empty(o)


def test_drop_mid_data_retries(make_outpost, dns, srv):
    srv.data_reply = lambda n, msg: "drop" if n == 1 else "250 2.0.0 OK"
    o = make_outpost(delivery_overrides(dns, srv.port))
    qid = o.send_raw(simple_message("dropped"), rcpts=["d@dest.test"])
    wait_log(o, re.compile(qid + r": to=<d@dest\.test>, .*status=deferred"))
    wait_queue_empty(o)
    assert len(normal(srv)) == 1


def tls_ctx(o):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(o.dir, "tls", "server.crt"),
                        os.path.join(o.dir, "tls", "server.key"))
    return ctx


def test_broken_starttls_opportunistic_delivers(make_outpost, dns, srv):
    o = make_outpost(delivery_overrides(dns, srv.port))
    srv.tls_ctx = tls_ctx(o)
    srv.broken_tls = True
    qid = o.send_raw(simple_message("plain"), rcpts=["o@dest.test"])
    wait_log(o, re.compile(qid + r": to=<o@dest\.test>, .*status=sent"))
    assert "trying again without TLS" in o.log_text()
    assert normal(srv)[0].tls is False


def test_broken_starttls_required_defers(make_outpost, dns, srv):
    o = make_outpost(delivery_overrides(dns, srv.port, tls="required",
                                        retry_interval="60s",
                                        max_retry_interval="60s"))
    srv.tls_ctx = tls_ctx(o)
    srv.broken_tls = True
    qid = o.send_raw(simple_message(), rcpts=["q@dest.test"])
    wait_log(o, re.compile(qid + r": to=<q@dest\.test>, .*status=deferred"))
    assert not srv.messages


def test_untrusted_certificate(make_outpost, dns, srv):
    """The certificate is for "localhost", the MX is mx.dest.test:
    opportunistic delivers and logs it; tls = verify defers."""
    o = make_outpost(delivery_overrides(dns, srv.port))
    srv.tls_ctx = tls_ctx(o)
    qid = o.send_raw(simple_message(), rcpts=["u@dest.test"])
    wait_log(o, re.compile(qid + r": to=<u@dest\.test>, .*"
                           r"tls=TLSv1\.[23] \(untrusted\).*status=sent"))
    assert "TLS certificate not verified" in o.log_text()
    assert normal(srv)[0].tls is True
    o.stop()
    o.edit_conf({"delivery": {"tls": "verify", "retry_interval": "60s",
                              "max_retry_interval": "60s"}})
    o.start()
    qid = o.send_raw(simple_message(), rcpts=["v@dest.test"])
    wait_log(o, re.compile(qid + r": to=<v@dest\.test>, .*status=deferred"))
    assert len(normal(srv)) == 1


def test_huge_reply_line_is_bounded(make_outpost, dns, srv):
    srv.greeting = "huge"
    o = make_outpost(delivery_overrides(dns, srv.port, retry_interval="60s",
                                        max_retry_interval="60s"))
    qid = o.send_raw(simple_message(), rcpts=["x@dest.test"])
    wait_log(o, re.compile(qid + r": to=<x@dest\.test>, .*status=deferred"))
    assert o.noop_works()


def test_dns_timeout_defers(make_outpost, dns, srv):
    o = make_outpost(delivery_overrides(dns, srv.port, retry_interval="60s",
                                        max_retry_interval="60s"))
    qid = o.send_raw(simple_message(), rcpts=["s@slow.test"])
    wait_log(o, re.compile(qid + r": to=<s@slow\.test>, .*dsn=4\.4\.3, "
                           r"status=deferred"))
    assert qid in o.queue_list()


@pytest.mark.parametrize("rcpt,status,why", [
    ("n@nx.test", "5.1.2", "not found"),
    ("n@nullmx.test", "5.1.10", "null MX"),
    ("n@nowhere.test", "5.4.4", "points nowhere"),
])
def test_dns_permanent_failures_bounce(make_outpost, dns, srv, rcpt, status,
                                       why):
    o = make_outpost(delivery_overrides(dns, srv.port))
    qid = o.send_raw(simple_message("dnsfail"), rcpts=[rcpt])
    wait_log(o, re.compile(qid + r": to=<" + re.escape(rcpt) + r">, .*dsn=" +
                           re.escape(status) + r", status=bounced \(.*" + why))
    assert wait_until(lambda: bounces(srv), timeout=20), o.log_text()[-3000:]
    assert ("Status: " + status).encode() in bounces(srv)[0].data
    wait_queue_empty(o)


def test_loop_to_loopback_refused(make_outpost, dns, srv):
    """Without allow_loopback an MX on 127.0.0.1 is a loop: bounced; the
    bounce itself loops too and is dropped (null sender), not bounced."""
    o = make_outpost(delivery_overrides(dns, srv.port, allow_loopback="no"))
    qid = o.send_raw(simple_message(), rcpts=["l@dest.test"])
    wait_log(o, re.compile(qid + r": to=<l@dest\.test>, .*dsn=5\.4\.6, "
                           r"status=bounced \(.*loops back to myself"))
    wait_log(o, "notification for a message with a null sender is never "
                "sent")
    wait_queue_empty(o)
    assert o.log_text().count("sender notification:") == 1
    assert not srv.messages


def test_452_too_many_recipients_new_transaction(make_outpost, dns, srv):
    srv.rcpt_limit = 2
    o = make_outpost(delivery_overrides(dns, srv.port))
    rcpts = ["r%d@dest.test" % i for i in range(5)]
    o.send_raw(simple_message("many"), rcpts=rcpts)
    assert wait_until(lambda: sum(len(m.rcpts) for m in normal(srv)) == 5,
                      timeout=20), o.log_text()[-3000:]
    assert len(normal(srv)) == 3
    assert sorted(a for m in normal(srv) for a in m.rcpt_addrs) == rcpts
    wait_log(o, "sending them in a new transaction")
    wait_queue_empty(o)


def test_8bit_to_hop_without_8bitmime_bounces(make_outpost, dns, srv):
    srv.caps = ["PIPELINING", "ENHANCEDSTATUSCODES"]
    o = make_outpost(delivery_overrides(dns, srv.port))
    s = o.smtp_ssl()
    try:
        s.sendmail(USER, ["e@dest.test"],
                   simple_message("8bit", body="Grüße\r\n".encode()),
                   mail_options=["BODY=8BITMIME"])
    finally:
        s.quit()
    wait_log(o, re.compile(r"to=<e@dest\.test>, .*dsn=5\.6\.3, status=bounced"))
    assert wait_until(lambda: bounces(srv), timeout=20)
    assert not normal(srv)


def test_declared_8bit_but_7bit_content_is_delivered(make_outpost, dns, srv):
    """BODY=8BITMIME on a message that is all ASCII goes to a hop without
    8BITMIME unchanged (nothing to convert)."""
    srv.caps = ["PIPELINING", "ENHANCEDSTATUSCODES"]
    o = make_outpost(delivery_overrides(dns, srv.port))
    s = o.smtp_ssl()
    try:
        s.sendmail(USER, ["s@dest.test"], simple_message("ascii"),
                   mail_options=["BODY=8BITMIME"])
    finally:
        s.quit()
    assert wait_until(lambda: normal(srv), timeout=20), o.log_text()[-3000:]
    assert "BODY=" not in normal(srv)[0].mail_params
    assert not bounces(srv)
    wait_queue_empty(o)


def test_expiry_bounces_and_delay_warning(make_outpost, dns, srv):
    srv.data_reply = lambda n, msg: ("451 4.3.0 try later" if msg.mail_from
                                     else "250 2.0.0 OK")
    o = make_outpost(delivery_overrides(dns, srv.port, queue_lifetime="4s",
                                        delay_warning="1s"))
    qid = o.send_raw(simple_message("late"), rcpts=["w@dest.test"])
    assert wait_until(lambda: len(bounces(srv)) >= 2, timeout=30), \
        o.log_text()[-3000:]
    b = [m.data for m in bounces(srv)]
    delay = [x for x in b if b"Action: delayed" in x]
    failed = [x for x in b if b"Action: failed" in x]
    assert len(delay) == 1 and len(failed) == 1, b
    assert b"Will-Retry-Until:" in delay[0]
    assert b"Status: 4.4.7" in failed[0]
    wait_log(o, re.compile(qid + r": to=<w@dest\.test>, .*dsn=4\.4\.7, "
                           r"status=bounced \(message expired"))
    wait_queue_empty(o)


def test_421_slows_destination(make_outpost, dns, srv):
    srv.greeting = "421 4.7.28 rate limited, slow down"
    o = make_outpost(delivery_overrides(dns, srv.port, retry_interval="60s",
                                        max_retry_interval="60s"))
    qid = o.send_raw(simple_message(), rcpts=["g@dest.test"])
    wait_log(o, re.compile(qid + r": to=<g@dest\.test>, .*status=deferred"))
    r = o.cli("status")
    assert b"dest.test" in r.stdout, r.stdout


def test_kill9_during_delivery_no_loss_no_resend(make_outpost, dns, srv):
    """Two destinations: dest.test accepts at once; other.test (127.0.0.3)
    hangs.  kill -9 while other.test is being tried; after the restart
    with other.test answering, it is delivered and dest.test is NOT sent
    again (its mark was written)."""
    hang = ScriptedSMTP(host="127.0.0.3", port=srv.port)
    hang.greeting = "hang"
    try:
        o = make_outpost(delivery_overrides(dns, srv.port,
                                            command_timeout="30s"))
        qid = o.send_raw(simple_message("k9"),
                         rcpts=["a@dest.test", "b@other.test"])
        wait_log(o, re.compile(qid + r": to=<a@dest\.test>, .*status=sent"))
        assert wait_until(lambda: hang.connections >= 1, timeout=10)
        o.kill9()
        assert qid in o.queue_list()
        hang.greeting = "220 mx.other.test ESMTP"
        hang.stop_event.set()
        o.start()
        assert wait_until(lambda: hang.messages, timeout=20), \
            o.log_text()[-3000:]
        wait_queue_empty(o)
        assert [m.rcpt_addrs for m in normal(srv)] == [["a@dest.test"]]
        assert hang.messages[0].rcpt_addrs == ["b@other.test"]
    finally:
        hang.stop()


def test_smtputf8_to_hop_without_it_bounces(make_outpost, dns, srv):
    """The next hop does not offer SMTPUTF8: the message needs it (a
    UTF-8 recipient), so it bounces politely with a global DSN."""
    srv.caps = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
    o = make_outpost(delivery_overrides(dns, srv.port))
    s = o.smtp_ssl()
    try:
        s.sendmail(USER, ["jürgen@dest.test"],
                   simple_message("utf8", body="Grüße\r\n".encode()),
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    finally:
        s.quit()
    wait_log(o, re.compile(r"to=<j\\xc3\\xbcrgen@dest\.test>, .*"
                           r"dsn=5\.6\.7, status=bounced", re.I))
    assert wait_until(lambda: bounces(srv), timeout=20), o.log_text()[-3000:]
    body = bounces(srv)[0].data
    assert b"message/global-delivery-status" in body, body[:2000]
    assert not normal(srv)
    wait_queue_empty(o)


def test_5xx_after_dot_fails_every_recipient(make_outpost, dns, srv):
    srv.data_reply = lambda n, msg: ("554 5.6.0 content rejected"
                                     if msg.mail_from else "250 2.0.0 OK")
    o = make_outpost(delivery_overrides(dns, srv.port))
    qid = o.send_raw(simple_message("spammy"),
                     rcpts=["a@dest.test", "b@dest.test"])
    assert wait_until(lambda: bounces(srv), timeout=20), o.log_text()[-3000:]
    body = bounces(srv)[0].data
    assert b"Final-Recipient: rfc822; a@dest.test" in body
    assert b"Final-Recipient: rfc822; b@dest.test" in body
    assert b"Status: 5.6.0" in body
    for r in ("a", "b"):
        wait_log(o, re.compile(qid + r": to=<" + r + r"@dest\.test>, .*"
                               r"status=bounced \(554 5\.6\.0"))
    wait_queue_empty(o)


def test_5xx_greeting_tries_next_mx(make_outpost, srv):
    """The preferred MX (127.0.0.2) answers 554 to the connection: the
    next MX gets the message (RFC 5321 5.1)."""
    bad = ScriptedSMTP(host="127.0.0.2", port=srv.port)
    bad.greeting = "554 5.7.1 go away"
    d = ZoneDNS(zone(**{"two.test": [("MX", (5, "bad.two.test")),
                                     ("MX", (10, "good.two.test"))],
                        "bad.two.test": [("A", "127.0.0.2")],
                        "good.two.test": [("A", "127.0.0.1")]}))
    try:
        o = make_outpost(delivery_overrides(d, srv.port))
        qid = o.send_raw(simple_message(), rcpts=["t@two.test"])
        wait_log(o, re.compile(qid + r": to=<t@two\.test>, "
                               r"relay=good\.two\.test.*status=sent"))
        assert bad.connections >= 1
        assert normal(srv)[0].rcpt_addrs == ["t@two.test"]
    finally:
        bad.stop()
        d.stop()

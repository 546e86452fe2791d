"""
Delivery engine, the normal paths: MX lookup against a real DNS server
(dnslib) and delivery to a real receiving server (aiosmtpd) or the
scripted one; several recipients per transaction; connection reuse;
fallback to A when there is no MX; MX preference order; DSN parameters
passed to a next hop that offers DSN; success notices; queue control
over the control socket; Postfix-style log lines.
"""
import collections
import json
import os
import re
import stat
import time

import pytest

from conftest import USER, send_until_stopped, simple_message, wait_until
from dlvtest import (AioSink, ScriptedSMTP, ZoneDNS, delivery_overrides,
                     wait_log, wait_queue_empty)


def zone_basic():
    return {
        "dest.test": [("MX", (10, "mx.dest.test"))],
        "mx.dest.test": [("A", "127.0.0.1")],
        "example.test": [("MX", (10, "mx.dest.test"))],
        "amx.test": [("A", "127.0.0.1")],     # no MX: implicit MX
    }


@pytest.fixture
def dns_basic():
    d = ZoneDNS(zone_basic())
    yield d
    d.stop()


@pytest.fixture
def aiosink():
    s = AioSink()
    yield s
    s.stop()


def test_delivers_to_mx_with_aiosmtpd(make_outpost, dns_basic, aiosink):
    o = make_outpost(delivery_overrides(dns_basic, aiosink.port))
    qid = o.send_raw(simple_message("hello"), rcpts=["bob@dest.test",
                                                     "carol@dest.test"])
    assert wait_until(lambda: len(aiosink.messages) >= 1, timeout=20), \
        o.log_text()[-3000:]
    m = aiosink.messages[0]
    assert m.mail_from == USER
    assert sorted(m.rcpt_addrs) == ["bob@dest.test", "carol@dest.test"]
    assert b"Subject: hello" in m.data
    wait_queue_empty(o)
    # one Postfix-style line per recipient
    for rcpt in ("bob@dest.test", "carol@dest.test"):
        wait_log(o, re.compile(
            qid + r": to=<" + re.escape(rcpt) + r">, "
            r"relay=mx\.dest\.test\[127\.0\.0\.1\]:\d+, delay=[0-9.]+, "
            r"tls=\S+, dsn=2\.\d\.\d, status=sent \(250 "))
    assert ("mx.dest.test", "MX") not in dns_basic.queries
    assert ("dest.test", "MX") in dns_basic.queries


def test_no_mx_falls_back_to_a(make_outpost, dns_basic, aiosink):
    o = make_outpost(delivery_overrides(dns_basic, aiosink.port))
    o.send_raw(simple_message("implicit"), rcpts=["x@amx.test"])
    assert wait_until(lambda: aiosink.messages, timeout=20), o.log_text()[-3000:]
    assert aiosink.messages[0].rcpt_addrs == ["x@amx.test"]
    wait_queue_empty(o)


def test_mx_preference_order(make_outpost, aiosink):
    """The lower preference is tried first; 127.0.0.2 (preference 5)
    refuses connections, so delivery goes on to the next MX."""
    zone = {
        "pref.test": [("MX", (20, "good.pref.test")),
                      ("MX", (5, "bad.pref.test"))],
        "good.pref.test": [("A", "127.0.0.1")],
        "bad.pref.test": [("A", "127.0.0.2")],
        "example.test": [("MX", (10, "good.pref.test"))],
    }
    d = ZoneDNS(zone)
    try:
        o = make_outpost(delivery_overrides(d, aiosink.port))
        qid = o.send_raw(simple_message(), rcpts=["p@pref.test"])
        assert wait_until(lambda: aiosink.messages, timeout=20), \
            o.log_text()[-3000:]
        text = o.log_text()
        i_bad = text.find("bad.pref.test[127.0.0.2]")
        i_good = text.find("to=<p@pref.test>, relay=good.pref.test")
        assert 0 <= i_bad < i_good, text[-3000:]
        wait_queue_empty(o)
        assert qid
    finally:
        d.stop()


def test_dsn_params_passed_on(make_outpost, dns_basic):
    srv = ScriptedSMTP()
    try:
        o = make_outpost(delivery_overrides(dns_basic, srv.port))
        s = o.smtp_ssl()
        try:
            ehlo = s.ehlo("client.example.test")
            assert "DSN" in s.esmtp_features.get("dsn", "") or \
                s.has_extn("dsn"), ehlo
            s.sendmail(USER, ["a@dest.test"], simple_message("one"),
                       mail_options=["RET=HDRS", "ENVID=env+2B1"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                     "ORCPT=rfc822;a@dest.test"])
        finally:
            s.quit()
        assert wait_until(lambda: srv.messages, timeout=20), o.log_text()[-3000:]
        m = srv.messages[0]
        assert "RET=HDRS" in m.mail_params and "ENVID=env+2B1" in m.mail_params
        addr, params = m.rcpts[0]
        assert addr == "a@dest.test"
        assert "NOTIFY=SUCCESS,FAILURE" in params
        assert "ORCPT=rfc822;a@dest.test" in params
        wait_queue_empty(o)
    finally:
        srv.stop()


def test_success_notice_when_next_hop_lacks_dsn(make_outpost, dns_basic,
                                                aiosink):
    """aiosmtpd offers no DSN: NOTIFY=SUCCESS gets a "relayed" report
    from us, to the sender (whose domain also points at the sink)."""
    o = make_outpost(delivery_overrides(dns_basic, aiosink.port))
    s = o.smtp_ssl()
    try:
        s.sendmail(USER, ["n@dest.test"], simple_message("notify"),
                   rcpt_options=["NOTIFY=SUCCESS"])
    finally:
        s.quit()
    assert wait_until(lambda: len(aiosink.messages) >= 2, timeout=20), \
        o.log_text()[-3000:]
    dsn = [m for m in aiosink.messages if m.mail_from in ("", "<>")]
    assert dsn, [m.mail_from for m in aiosink.messages]
    body = dsn[0].data
    assert dsn[0].rcpt_addrs == [USER]
    assert b"multipart/report" in body and b"report-type=delivery-status" in body
    assert b"Action: relayed" in body
    assert b"Final-Recipient: rfc822; n@dest.test" in body
    assert b"Auto-Submitted: auto-replied" in body
    wait_queue_empty(o)


def test_queue_control_socket_and_cli(make_outpost, dns_basic):
    """hold / release / show / list / status / delete / flush over the
    control socket (0600) of the running daemon."""
    srv = ScriptedSMTP()
    srv.data_reply = lambda n, msg: "451 4.3.0 try later"
    try:
        o = make_outpost(delivery_overrides(dns_basic, srv.port,
                                            retry_interval="60s",
                                            max_retry_interval="60s"))
        sock = os.path.join(o.dir, "data", "control.sock")
        # the listeners accept (backlog) a moment before everything is up
        assert wait_until(lambda: os.path.exists(sock), timeout=10)
        st = os.stat(sock)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        qid = o.send_raw(simple_message("ctl"), rcpts=["q@dest.test"])
        wait_log(o, qid + ": to=<q@dest.test>")
        r = o.cli("queue", "list")
        out = r.stdout.decode()
        assert r.returncode == 0 and qid in out, (out, r.stderr)
        assert "deferred" in out and "451 4.3.0 try later" in out, out
        r = o.cli("queue", "show", qid)
        assert r.returncode == 0 and b"q@dest.test" in r.stdout, r
        assert b"Subject: ctl" in r.stdout
        r = o.cli("status")
        assert r.returncode == 0, r
        assert b"dest.test" in r.stdout and b"deferred" in r.stdout, r.stdout
        assert o.cli("queue", "hold", qid).returncode == 0
        assert "held" in o.cli("queue", "list").stdout.decode()
        # flush does not touch a held message
        tries = srv.data_tries
        assert o.cli("queue", "flush").returncode == 0
        time.sleep(0.5)
        assert srv.data_tries == tries
        srv.data_reply = lambda n, msg: "250 2.0.0 OK"
        assert o.cli("queue", "release", qid).returncode == 0
        assert wait_until(lambda: srv.messages, timeout=20), o.log_text()[-3000:]
        wait_queue_empty(o)
        # delete
        srv.data_reply = lambda n, msg: "451 4.3.0 try later"
        qid2 = o.send_raw(simple_message("del"), rcpts=["d@dest.test"])
        wait_log(o, qid2 + ": to=<d@dest.test>")
        r = o.cli("queue", "delete", qid2)
        assert r.returncode == 0, r
        wait_queue_empty(o)
        r = o.cli("queue", "show", qid2)
        assert r.returncode != 0
        r = o.cli("queue", "hold", "NOTAQUEUEID")
        assert r.returncode != 0
    finally:
        srv.stop()


def test_queue_cli_with_daemon_stopped(make_outpost, dns_basic):
    srv = ScriptedSMTP()
    srv.data_reply = lambda n, msg: "451 4.3.0 try later"
    try:
        o = make_outpost(delivery_overrides(dns_basic, srv.port,
                                            retry_interval="60s",
                                            max_retry_interval="60s"))
        qid = o.send_raw(simple_message("offline"), rcpts=["o@dest.test"])
        wait_log(o, qid + ": to=<o@dest.test>")
        o.stop()
        out = o.cli("queue", "list").stdout.decode()
        assert qid in out and "451 4.3.0" in out, out
        assert o.cli("queue", "hold", qid).returncode == 0
        assert "held" in o.cli("queue", "list").stdout.decode()
        assert o.cli("queue", "delete", qid).returncode == 0
        assert qid not in o.cli("queue", "list").stdout.decode()
        o.start()
    finally:
        srv.stop()


def test_ipv6_mx_and_ipv4_only(make_outpost, aiosink):
    """An MX with only an AAAA record (::1) is reached over IPv6; the
    same destination listed in ipv4_only has no usable address."""
    from dlvtest import AioSink
    sink6 = AioSink(host="::1", port=aiosink.port)
    zone = {"v6.test": [("MX", (10, "mx.v6.test"))],
            "mx.v6.test": [("AAAA", "::1")],
            "example.test": [("MX", (10, "mx4.test"))],
            "mx4.test": [("A", "127.0.0.1")]}
    d = ZoneDNS(zone)
    try:
        o = make_outpost(delivery_overrides(d, aiosink.port))
        qid = o.send_raw(simple_message("six"), rcpts=["s@v6.test"])
        assert wait_until(lambda: sink6.messages, timeout=20), \
            o.log_text()[-3000:]
        wait_log(o, qid + ": to=<s@v6.test>, relay=mx.v6.test[::1]:")
        wait_queue_empty(o)
        o.stop()
        o.edit_conf({"delivery": {"ipv4_only": "v6.test other.test"}})
        o.start()
        qid = o.send_raw(simple_message("six"), rcpts=["t@v6.test"])
        wait_log(o, re.compile(qid + r": to=<t@v6\.test>, .*status=bounced "
                               r"\(.*MX points nowhere"))
        assert len(sink6.messages) == 1
    finally:
        sink6.stop()
        d.stop()


def test_submission_dsn_parameters(make_outpost, dns_basic):
    """EHLO offers DSN; malformed NOTIFY / RET get 555 5.5.4 and the
    session goes on; the values are stored with the envelope."""
    o = make_outpost(delivery_overrides(dns_basic, 9, retry_interval="60s",
                                        max_retry_interval="60s"))
    d = o.dialog("implicit")
    try:
        assert "DSN" in d.ehlo()
        d.login()
        d.cmd("MAIL FROM:<%s> RET=BOGUS" % USER)
        d.expect(555, "5.5.4")
        d.cmd("MAIL FROM:<%s> RET=FULL ENVID=abc+2Bdef" % USER)
        d.expect(250)
        d.cmd("RCPT TO:<x@dest.test> NOTIFY=SOMETIMES")
        d.expect(555, "5.5.4")
        d.cmd("RCPT TO:<x@dest.test> NOTIFY=NEVER,SUCCESS")
        d.expect(555, "5.5.4")
        d.cmd("RCPT TO:<x@dest.test> NOTIFY=DELAY,FAILURE "
              "ORCPT=rfc822;x@dest.test")
        d.expect(250)
        d.cmd("DATA")
        d.expect(354)
        d.send(simple_message("dsnparams") + b".\r\n")
        r = d.reply()
        assert r.code == 250, r
        qid = r.lines[-1].split()[-1]
    finally:
        d.close()
    env, _ = o.stored(qid)
    assert b"ret full" in env and b"envid abc+2Bdef" in env, env
    assert b"notify=failure,delay" in env or b"notify=delay,failure" in env, env
    assert b"orcpt=rfc822;x@dest.test" in env, env


def test_status_counts_auth_failures(make_outpost, dns_basic):
    o = make_outpost(delivery_overrides(dns_basic, 9))
    sock = os.path.join(o.dir, "data", "control.sock")
    assert wait_until(lambda: os.path.exists(sock), timeout=10)
    d = o.dialog("implicit")
    try:
        d.ehlo()
        r = d.auth_plain(password="wrong password")
        assert r.code == 535, r
    finally:
        d.close()
    r = o.cli("status")
    assert r.returncode == 0, r
    assert b"auth failures: 1 in the last hour" in r.stdout, r.stdout
    assert b"outpostd:   running" in r.stdout


@pytest.mark.parametrize("reuse", ["yes", "no"])
def test_connection_reuse(make_outpost, dns_basic, reuse):
    """Three messages waiting for one destination (one connection at a
    time): with reuse they go over one connection, without over three."""
    srv = ScriptedSMTP()
    srv.data_reply = lambda n, msg: "451 4.3.0 not yet"
    try:
        o = make_outpost(delivery_overrides(
            dns_basic, srv.port, retry_interval="60s",
            max_retry_interval="60s", max_per_destination="1",
            connection_reuse=reuse))
        qids = [o.send_raw(simple_message("r%d" % i),
                           rcpts=["r%d@dest.test" % i]) for i in range(3)]
        for q in qids:
            wait_log(o, re.compile(q + r": to=<.*status=deferred"))
        srv.data_reply = lambda n, msg: "250 2.0.0 OK"
        before = srv.connections
        assert o.cli("queue", "flush").returncode == 0
        assert wait_until(lambda: len(srv.messages) == 3, timeout=20), \
            o.log_text()[-3000:]
        wait_queue_empty(o)
        if reuse == "yes":
            # one connection, or none when the parked one from the
            # deferred round was still open
            assert srv.connections - before <= 1
        else:
            assert srv.connections - before == 3
    finally:
        srv.stop()


def test_idle_connection_parked_then_quit(make_outpost, dns_basic):
    """A delivery connection with nothing left to send waits a little
    (2 s) for the next message to its destination, then says QUIT."""
    srv = ScriptedSMTP()
    try:
        o = make_outpost(delivery_overrides(dns_basic, srv.port))
        o.send_raw(simple_message("one"), rcpts=["a@dest.test"])
        assert wait_until(lambda: len(srv.messages) == 1, timeout=20), \
            o.log_text()[-3000:]
        t0 = time.monotonic()
        o.send_raw(simple_message("two"), rcpts=["b@dest.test"])
        assert wait_until(lambda: len(srv.messages) == 2, timeout=20), \
            o.log_text()[-3000:]
        if time.monotonic() - t0 < 1.5:
            # the second came well within the idle time: same connection
            assert srv.connections == 1
        # then the parked connection is closed politely
        assert wait_until(lambda: srv.quits == srv.connections,
                          timeout=15), (srv.quits, srv.connections)
        wait_queue_empty(o)
    finally:
        srv.stop()


def test_recycled_spool_files_survive_kill9(make_outpost, dns_basic, aiosink):
    """Delivered messages' files are reused for new ones (spool/free/).
    kill -9 while mail is both arriving and being delivered, restart:
    every acknowledged message is delivered, and every delivered message
    is whole and its own (a reused file never shows another message's
    bytes or an old queue id)."""
    import threading

    o = make_outpost(delivery_overrides(dns_basic, aiosink.port))
    acked, errors = {}, []
    stop = threading.Event()

    def sender(k):
        n = [0]

        def send_one(s):
            tok = "tok-%d-%d" % (k, n[0])
            n[0] += 1
            # sizes vary, so a reused file is sometimes cut short
            body = ("%s\r\n" % tok).encode() + b"y" * (37 * (n[0] % 9))
            s.sendmail(USER, ["r%d@dest.test" % k],
                       simple_message(tok, body + b"\r\n"))
            acked[s.queue_id()] = tok
        send_until_stopped(o, stop, errors, send_one, per_conn=10,
                           max_conns=40)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    names_of = collections.defaultdict(set)    # inode -> queue ids

    def seen_enough():
        try:
            for e in os.scandir(os.path.join(o.spool, "queue")):
                names_of[e.inode()].add(e.name)
        except OSError:
            pass
        return (len(aiosink.messages) >= 40 and
                any(len(v) > 1 for v in names_of.values()))

    try:
        # delivered messages' files carry new messages (one inode seen
        # under two queue ids), then kill mid-stream
        assert wait_until(seen_enough, timeout=30, interval=0.005), \
            (len(acked), len(aiosink.messages), errors)
        time.sleep(0.2)
        o.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "sender thread hung"
    got = dict(acked)
    assert len(got) >= 40
    o.start()
    wait_queue_empty(o, timeout=60)
    delivered = collections.Counter()
    for m in aiosink.messages:
        data = m.data.replace(b"\r\n", b"\n")
        subj = re.search(rb"^Subject: (tok-\d+-\d+)$", data, re.M)
        assert subj, data[:300]
        tok = subj.group(1)
        # the body starts with the same token: no mix of two messages
        head, _, body = data.partition(b"\n\n")
        assert body.startswith(tok + b"\n"), (tok, body[:100])
        k, n = (int(x) for x in tok.decode().split("-")[1:])
        want = tok + b"\n" + b"y" * (37 * ((n + 1) % 9))
        assert body.rstrip(b"\n") == want.rstrip(b"\n"), tok
        delivered[tok.decode()] += 1
    lost = [t for t in got.values() if delivered[t] == 0]
    assert not lost, "acknowledged but never delivered: %r" % lost[:10]
    # the restarted daemon still recycles and delivers
    qid = o.send_raw(simple_message("after", b"tok-after\r\n"),
                     rcpts=["z@dest.test"])
    wait_queue_empty(o)
    assert qid not in got

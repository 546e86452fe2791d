"""DKIM signing (RFC 6376, RFC 8463): messages submitted through the real
daemon are signed when they are delivered; the tests take them as the
next hop receives them (an aiosmtpd sink, reached through [delivery]
smarthost) and verify them with dkimpy, the independent verifier, against
the DNS records that `outpost dkim show` prints (served through dkimpy's
dnsfunc hook)."""
import os
import re
import signal
import smtplib

import dkim
import pytest

from conftest import (RCPT, USER, PASSWORD, free_port, is_asan_build,
                      merge_overrides, simple_message, wait_until)
from dkim_corpus import corpus
from dkimtest import dns_records, dnsfunc_for, signatures, verify_all
from dlvtest import AioSink


def sink_overrides(port):
    return {"delivery": {"smarthost": "127.0.0.1:%d" % port,
                         "smarthost_tls": "none", "allow_loopback": "yes",
                         "retry_interval": "1s", "max_retry_interval": "1s",
                         "connect_timeout": "3s", "command_timeout": "30s"}}


@pytest.fixture
def outpost_setup(request, make_outpost):
    """outpost relaying everything to an aiosmtpd sink (o.sink)."""
    m = request.node.get_closest_marker("outpost_conf")
    sink = AioSink(smtputf8=True)
    o = make_outpost(overrides=merge_overrides(m.args[0] if m else {},
                                               sink_overrides(sink.port)))
    o.sink = sink
    yield o
    sink.stop()


def delivered(o, qid, timeout=60.0):
    """The message with queue id qid as the sink received it."""
    tag = b" id " + qid.encode()
    found = []

    def pred():
        for m in list(o.sink.messages):
            if tag in m.data.split(b"\r\n\r\n", 1)[0]:
                found.append(m.data)
                return True
        return False

    assert wait_until(pred, timeout=timeout), \
        "%s never delivered; log tail:\n%s" % (qid, o.log_text()[-3000:])
    return found[0]


def submit_many(o, msgs):
    """Submits every (name, msg, opts) over one authenticated session;
    returns [(name, msg, qid)]."""
    out = []
    s = o.smtp_ssl()
    try:
        for name, msg, opts in msgs:
            s.sendmail(USER, [RCPT], msg, mail_options=opts)
            out.append((name, msg, s.queue_id()))
    finally:
        s.quit()
    return out


def header_names(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return [ln.split(b":", 1)[0].strip().lower()
            for ln in head.split(b"\r\n") if ln and ln[:1] not in (b" ", b"\t")]


def test_corpus_double_signature_verifies(outpost_setup):
    """Every message of a 36-message corpus (multipart, 8-bit, SMTPUTF8, folded and long headers, empty body, trailing whitespace/blank lines) gets an ed25519-sha256 and an rsa-sha256 signature that dkimpy verifies; the body is stored byte for byte."""
    o = outpost_setup
    recs = dns_records(o)
    assert len(recs) == 2, recs
    msgs = corpus()
    assert len(msgs) >= 30
    for name, orig, qid in submit_many(o, msgs):
        stored = delivered(o, qid)
        sigs = signatures(stored)
        assert [t["a"] for t in sigs] == ["ed25519-sha256", "rsa-sha256"], (name, sigs)
        for t in sigs:
            assert t["d"] == "example.test" and t["c"] == "relaxed/relaxed", (name, t)
            assert re.fullmatch(r"\d+", t["t"]), t
            h = t["h"].split(":")
            assert h.count("from") == header_names(orig).count(b"from") + 1, (name, h)
        assert sigs[0]["s"] != sigs[1]["s"], "both keys share a selector"
        algs = verify_all(stored, recs)
        assert algs == ["ed25519-sha256", "rsa-sha256"], (name, algs)
        # the top of the header: signatures, then our Received
        names = header_names(stored)
        assert names[:3] == [b"dkim-signature", b"dkim-signature", b"received"], (name, names[:4])
        # byte for byte: the body and every original field but Bcc
        if b"\r\n\r\n" in orig:
            assert stored.split(b"\r\n\r\n", 1)[1] == orig.split(b"\r\n\r\n", 1)[1], name
        ohead = orig.split(b"\r\n\r\n", 1)[0]
        fields = re.split(rb"\r\n(?![ \t])", ohead.rstrip(b"\r\n"))
        for f in fields:
            if f.lower().startswith(b"bcc:"):
                assert f not in stored, name
            else:
                assert f + b"\r\n" in stored, (name, f)


def test_tampered_message_fails_verification(outpost_setup):
    """The verifier is not a rubber stamp: a changed body or Subject makes both signatures fail."""
    o = outpost_setup
    recs = dns_records(o)
    qid = o.send_raw(simple_message(subject="original", body=b"the body\r\n"))
    stored = delivered(o, qid)
    assert verify_all(stored, recs) == ["ed25519-sha256", "rsa-sha256"]
    for bad in (stored.replace(b"the body", b"the b0dy"),
                stored.replace(b"Subject: original", b"Subject: 0riginal"),
                stored.replace(b"From: Alice <alice@example.test>",
                               b"From: Mallory <alice@example.test>")):
        for idx in (0, 1):
            try:
                ok = dkim.DKIM(bad).verify(idx=idx, dnsfunc=dnsfunc_for(recs))
            except dkim.DKIMException:
                ok = False
            assert not ok, "tampered message verified (signature %d)" % idx


def test_added_message_id_date_and_bcc_removed(outpost_setup):
    """A message without Message-ID and Date gets both (signed); Bcc is removed; the rest is unchanged."""
    o = outpost_setup
    recs = dns_records(o)
    msg = (b"From: alice@example.test\r\nTo: bob@example.org\r\n"
           b"Bcc: hidden@example.net\r\nSubject: no id\r\n\r\nbody\r\n")
    qid = o.send_raw(msg, rcpts=(RCPT, "hidden@example.net"))
    stored = delivered(o, qid)
    head = stored.split(b"\r\n\r\n", 1)[0]
    assert b"hidden@example.net" not in head
    m = re.search(rb"\r\nMessage-ID: <" + qid.encode() + rb"\.[0-9a-f]{16}@localhost>\r\n", head)
    assert m, head
    assert re.search(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n", head), head
    sigs = signatures(stored)
    for t in sigs:
        assert "message-id" in t["h"].split(":") and "date" in t["h"].split(":")
    verify_all(stored, recs)


def _remove_keys(o, alg):
    d = os.path.join(o.dir, "data", "dkim", "example.test")
    for fn in os.listdir(d):
        if fn.endswith("." + alg + ".key"):
            os.unlink(os.path.join(d, fn))


def _reload(o):
    # signal handlers are in place once the start-up line is logged
    assert wait_until(lambda: " started: " in o.log_text()), o.log_text()
    before = o.log_text().count("reloaded ")
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: o.log_text().count("reloaded ") > before), \
        o.log_text()[-3000:]


@pytest.mark.parametrize("remove,left", [("rsa", "ed25519-sha256"), ("ed25519", "rsa-sha256")])
def test_single_key_after_sighup(outpost_setup, remove, left):
    """With one key left (removed the other, SIGHUP) a message carries exactly one signature, which verifies."""
    o = outpost_setup
    recs = dns_records(o)
    _remove_keys(o, remove)
    _reload(o)
    qid = o.send_raw(simple_message())
    stored = delivered(o, qid)
    assert [t["a"] for t in signatures(stored)] == [left]
    assert verify_all(stored, recs) == [left]


def add_alias(o, alias):
    r = o.cli("user", "alias", "add", USER, alias)
    assert r.returncode == 0, r.stderr


def send_as(o, sender, msg):
    """Submits msg with MAIL FROM:<sender> as the test account."""
    s = o.smtp_ssl()
    try:
        s.sendmail(sender, [RCPT], msg)
        return s.queue_id()
    finally:
        s.quit()


def test_no_key_unsigned_and_logged(outpost_setup):
    """Mail from the account's alias in a domain without a key goes out unsigned, with a log line naming the domain."""
    o = outpost_setup
    add_alias(o, "alice@other.example")
    msg = (b"From: alice@other.example\r\nTo: bob@example.org\r\n"
           b"Subject: other domain\r\n\r\nbody\r\n")
    qid = send_as(o, "alice@other.example", msg)
    stored = delivered(o, qid)
    assert signatures(stored) == []
    assert wait_until(lambda: "%s: dkim: no key for other.example" % qid in o.log_text())


def test_foreign_from_refused(outpost_setup):
    """A From: address that is neither the login nor one of its aliases is refused (553 5.7.1): outpost never signs someone else's mail."""
    o = outpost_setup
    msg = (b"From: ceo@example.test\r\nTo: bob@example.org\r\n"
           b"Subject: not mine\r\n\r\nbody\r\n")
    with pytest.raises(smtplib.SMTPDataError) as e:
        o.send_raw(msg)
    assert e.value.smtp_code == 553
    assert o.queue_files() == []


@pytest.mark.outpost_conf({"accounts": {"sender_rule": "rewrite"}})
def test_foreign_from_rewritten_and_signed(outpost_setup):
    """In rewrite mode a foreign From: becomes the login, and the message is signed for the login's domain and verifies."""
    o = outpost_setup
    msg = (b"From: ceo@example.test\r\nTo: bob@example.org\r\n"
           b"Subject: not mine\r\n\r\nbody\r\n")
    qid = o.send_raw(msg)
    stored = delivered(o, qid)
    assert b"X-Original-From: ceo@example.test" in stored
    assert verify_all(stored, dns_records(o)) == ["ed25519-sha256", "rsa-sha256"]


def test_keygen_new_domain_and_sighup(outpost_setup):
    """`outpost dkim keygen` for a new domain writes 0600 keys; after SIGHUP mail from that domain is double-signed and verifies against `dkim show`."""
    o = outpost_setup
    r = o.cli("dkim", "keygen", "second.example")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "mail-ed._domainkey.second.example IN TXT \"v=DKIM1; k=ed25519; p=" in out, out
    assert "mail-rsa._domainkey.second.example IN TXT \"v=DKIM1; k=rsa; p=" in out, out
    kd = os.path.join(o.dir, "data", "dkim", "second.example")
    for fn in ("mail-ed.ed25519.key", "mail-rsa.rsa.key"):
        assert os.stat(os.path.join(kd, fn)).st_mode & 0o777 == 0o600
    _reload(o)
    recs = dns_records(o, "second.example")
    add_alias(o, "alice@second.example")
    msg = (b"From: Alice <alice@second.example>\r\nTo: bob@example.org\r\n"
           b"Subject: second\r\n\r\nbody\r\n")
    qid = send_as(o, "alice@second.example", msg)
    stored = delivered(o, qid)
    assert verify_all(stored, recs) == ["ed25519-sha256", "rsa-sha256"]
    assert all(t["d"] == "second.example" for t in signatures(stored))


def test_bdat_message_signed(outpost_setup):
    """A message sent in BDAT chunks (split inside the header and at the separator) is signed and verifies."""
    o = outpost_setup
    recs = dns_records(o)
    msg = simple_message(subject="bdat", body=b"chunked  body \r\n\r\n")
    cut = [10, msg.index(b"\r\n\r\n") + 1, msg.index(b"\r\n\r\n") + 3]
    parts = [msg[:cut[0]], msg[cut[0]:cut[1]], msg[cut[1]:cut[2]], msg[cut[2]:]]
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250)
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250)
        for i, p in enumerate(parts):
            last = i == len(parts) - 1
            d.send(b"BDAT %d%s\r\n" % (len(p), b" LAST" if last else b"") + p)
            r = d.reply()
            assert r.code == 250, r
        qid = r.text.split()[-1]
    stored = delivered(o, qid)
    assert verify_all(stored, recs) == ["ed25519-sha256", "rsa-sha256"]


def test_large_body_streamed_and_signed(outpost_setup):
    """A 30 MB body is streamed (daemon RSS grows far less than 30 MB), stored whole and its signatures verify (incremental body hash)."""
    o = outpost_setup
    recs = dns_records(o)
    line = b"0123456789 abcdefghij  ABCDEFGHIJ\tklmnopqrstuvwxyz \r\n"
    body = line * (30 * 1024 * 1024 // len(line) + 1) + b"\r\n\r\n"
    msg = simple_message(subject="big", body=body)
    rss0 = o.rss_kb()
    qid = o.send_raw(msg)
    rss1 = o.rss_kb()
    stored = delivered(o, qid)
    assert len(stored) > len(msg)
    assert stored.endswith(body)
    if not is_asan_build():
        assert rss1 - rss0 < 16 * 1024, "RSS grew by %d KiB for a 30 MB body" % (rss1 - rss0)
    assert verify_all(stored, recs) == ["ed25519-sha256", "rsa-sha256"]


@pytest.mark.outpost_conf({"dkim": {"expire": "7d"}})
def test_expire_adds_x_tag(outpost_setup):
    """[dkim] expire = 7d puts x= = t= + 604800 in both signatures, which still verify."""
    o = outpost_setup
    recs = dns_records(o)
    qid = o.send_raw(simple_message())
    stored = delivered(o, qid)
    for t in signatures(stored):
        assert int(t["x"]) - int(t["t"]) == 7 * 86400, t
    assert verify_all(stored, recs) == ["ed25519-sha256", "rsa-sha256"]


def test_broken_key_file_skipped_on_sighup(outpost_setup):
    """A corrupt key file picked up on SIGHUP is skipped with a warning naming it; the daemon keeps serving and signs with the key that is left."""
    o = outpost_setup
    recs = dns_records(o)
    kd = os.path.join(o.dir, "data", "dkim", "example.test")
    with open(os.path.join(kd, "mail-rsa.rsa.key"), "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    with open(os.path.join(kd, "notes.txt"), "w") as f:
        f.write("operator notes\n")
    _reload(o)
    log = o.log_text()
    assert "mail-rsa.rsa.key: not a PEM private key, skipped" in log, log[-2000:]
    assert "notes.txt: not SELECTOR.ed25519.key or SELECTOR.rsa.key, skipped" in log
    qid = o.send_raw(simple_message())
    stored = delivered(o, qid)
    assert verify_all(stored, recs) == ["ed25519-sha256"]


def test_signed_at_delivery_not_in_the_spool(make_outpost):
    """The queued file holds the message unsigned; its envelope (version 2) names the signing domain and the body hash, and the signatures are made when it is delivered."""
    o = make_outpost()          # delivery fails at DNS: the message stays
    qid = o.send_raw(simple_message())
    env, stored = o.stored(qid)
    assert env.startswith(b"outpost-envelope 2\n"), env
    assert re.search(rb"\ndkim example\.test [0-9A-F]{64}\n", env), env
    assert signatures(stored) == []
    assert b"DKIM-Signature" not in stored
    r = o.cli("queue", "show", qid)
    assert r.returncode == 0, r.stderr
    assert re.search(rb"^dkim: +example\.test$", r.stdout, re.M), r.stdout


def test_key_removed_while_queued_sent_unsigned(make_outpost):
    """Signed once for its first attempt and reused by retries; after a key reload it is signed again with the keys of the time: a message queued while the next hop was down, whose domain lost its keys (SIGHUP) meanwhile, goes out unsigned with a log line saying why."""
    port = free_port()
    o = make_outpost(overrides=sink_overrides(port))
    qid = o.send_raw(simple_message())
    deferred = re.compile(re.escape(qid) + r": to=<[^\n]*status=deferred")
    assert wait_until(lambda: len(deferred.findall(o.log_text())) >= 2,
                      timeout=30), o.log_text()[-3000:]
    # a retry reuses the signature made for the first attempt
    assert o.log_text().count("%s: dkim: signed d=example.test" % qid) == 1
    _remove_keys(o, "rsa")
    _remove_keys(o, "ed25519")
    _reload(o)
    sink = AioSink(port=port)
    try:
        o.sink = sink
        stored = delivered(o, qid)
    finally:
        sink.stop()
    assert signatures(stored) == []
    assert "%s: dkim: not signed: no key for example.test any more" % qid \
        in o.log_text()

"""Submitting mail with Python's smtplib on both ports; what lands in the spool."""
import email.message
import re

from conftest import (OK_QID, PASSWORD, RCPT, USER, RecSMTP, simple_message)

# A body that exercises dot-stuffing and byte-exact storage.
BODY = (b"First line.\r\n"
        b".leading dot\r\n"
        b"..two leading dots\r\n"
        b".\r\n"
        b"trailing spaces   \r\n"
        b"\ttab\r\n"
        b"\r\n"
        b"last line\r\n")


def unfold_headers(msg):
    head = msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")


def check_stored(o, qid, original, tls_version=None):
    """The stored message: our Received first, original headers in order,
    body byte for byte."""
    env, stored = o.stored(qid)
    assert b"\n" not in stored.replace(b"\r\n", b""), "bare LF in stored message"
    assert b"\r" not in stored.replace(b"\r\n", b""), "bare CR in stored message"
    head, body = stored.split(b"\r\n\r\n", 1)
    ohead, obody = original.split(b"\r\n\r\n", 1)
    assert body == obody, "body changed:\n%r\n!=\n%r" % (body, obody)
    hdrs = unfold_headers(stored)
    received = [h for h in hdrs if h.lower().startswith("received:")]
    assert received, "no Received header in %r" % head
    r = received[0]
    assert ("with ESMTPSA id %s" % qid) in r, r
    assert "by localhost" in r, r
    assert "[127.0.0.1]" in r, r
    assert "version=TLS1_" in r, r
    if tls_version:
        assert "version=%s" % tls_version in r, r
    assert USER not in r, "login shown in Received by default: %r" % r
    # Original headers present, in the same order.
    pos = 0
    for line in ohead.split(b"\r\n"):
        i = head.find(line, pos)
        assert i >= 0, "header %r lost or reordered in %r" % (line, head)
        pos = i + len(line)
    assert USER.encode() in env and RCPT.encode() in env, env
    return stored


def test_starttls_submit_send_message(outpost_setup):
    """smtplib SMTP + starttls + login + send_message on the STARTTLS port gets 250 2.0.0 OK <qid>."""
    o = outpost_setup
    msg = email.message.EmailMessage()
    msg["From"] = USER
    msg["To"] = RCPT
    msg["Subject"] = "hello from smtplib"
    msg.set_content("Hi Bob.\n.a line with a dot\n")
    s = o.smtp_starttls()
    try:
        refused = s.send_message(msg)
        assert refused == {}
        qid = s.queue_id()
    finally:
        s.quit()
    assert o.queue_ids() == [qid]
    out = o.queue_list()
    assert qid in out and RCPT in out, out
    env, stored = o.stored(qid)
    assert b"\r\n.a line with a dot\r\n" in stored
    assert b"Subject: hello from smtplib\r\n" in stored


def test_implicit_tls_submit(outpost_setup):
    """smtplib SMTP_SSL on the implicit-TLS port submits; the message is stored byte for byte."""
    o = outpost_setup
    original = simple_message("implicit", BODY)
    qid = o.send_raw(original, mode="implicit")
    assert qid in o.queue_ids()
    out = o.queue_list()
    assert qid in out and RCPT in out, out
    check_stored(o, qid, original, tls_version="TLS1_3")
    assert o.tmp_files() == []


def test_starttls_stored_byte_exact(outpost_setup):
    """Over STARTTLS the stored message keeps CRLF ends and dot-unstuffed lines exactly."""
    o = outpost_setup
    original = simple_message("starttls", BODY)
    qid = o.send_raw(original, mode="starttls")
    check_stored(o, qid, original)


def test_reply_format_and_unique_ids(outpost_setup):
    """Several messages on one connection each get '250 2.0.0 OK <16-char id>', ids unique and sorted."""
    o = outpost_setup
    s = o.smtp_ssl()
    ids = []
    try:
        for i in range(5):
            s.sendmail(USER, [RCPT, "carol@example.net"],
                       simple_message("n%d" % i))
            code, resp = s.last_data_reply
            assert code == 250 and OK_QID.match(resp), s.last_data_reply
            ids.append(s.queue_id())
    finally:
        s.quit()
    assert len(set(ids)) == 5
    assert ids == sorted(ids), "queue ids not sortable by time: %r" % ids
    assert sorted(o.queue_ids()) == sorted(ids)
    out = o.queue_list()
    for q in ids:
        assert q in out
    assert "carol@example.net" in out


def test_tls12_submit(outpost_setup):
    """A TLS 1.2-only client can submit; Received says version=TLS1_2."""
    import ssl
    o = outpost_setup
    ctx = o.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = RecSMTP(o.host, o.port, timeout=10, local_hostname="client.example.test")
    s._host = "localhost"
    try:
        s.starttls(context=ctx)
        s.login(USER, PASSWORD)
        original = simple_message("tls12")
        s.sendmail(USER, [RCPT], original)
        qid = s.queue_id()
    finally:
        s.quit()
    check_stored(o, qid, original, tls_version="TLS1_2")


def test_login_mechanism_smtplib(outpost_setup):
    """smtplib with AUTH LOGIN (as many clients use) submits."""
    o = outpost_setup
    s = o.smtp_ssl(login=False)
    try:
        s.ehlo()
        s.user, s.password = USER, PASSWORD
        code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235, (code, resp)
        s.sendmail(USER, [RCPT], simple_message("login"))
        s.queue_id()
    finally:
        s.quit()

"""`outpost send` against the real outpostd (passwords from a file, a
command and the environment, app passwords, 2FA's 534, wrong password's
535, implicit TLS and STARTTLS, accounts file) and against small fake
servers playing failures (expired and wrong-name certificates, a 300 KB
reply line, STARTTLS injection, a refused recipient)."""
import os
import re
import socket
import subprocess

import pytest

from conftest import OUTPOST, PASSWORD, QID_RE, RCPT, USER
import smtpfake
from t_40_security import apppass_add, enrol_2fa

EX_USAGE, EX_DATAERR, EX_NOHOST, EX_UNAVAILABLE = 64, 65, 68, 69
EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM, EX_CONFIG = 75, 76, 77, 78


def send(args, data=b"Subject: t\r\n\r\nbody\r\n", env=None, timeout=60):
    e = dict(os.environ)
    e.pop("OUTPOST_PASSWORD", None)
    e["HOME"] = e.get("OUTPOST_TEST_HOME", "/nonexistent")
    e.update(env or {})
    return subprocess.run([OUTPOST, "send"] + list(args), input=data,
                          capture_output=True, timeout=timeout, env=e)


def base_args(o, port=None, tls=None):
    a = ["--host", o.host, "--port", str(port or o.port), "--ca-file", o.ca,
         "--tls-servername", "localhost", "--user", USER, "--from", USER,
         "--timeout", "20"]
    if tls:
        a += ["--tls", tls]
    return a


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "pw"
    p.write_text(PASSWORD + "\n")
    os.chmod(p, 0o600)
    return str(p)


def qid_of(o, before):
    new = [q for q in o.queue_ids() if q not in before]
    assert len(new) == 1, new
    return new[0]


def test_send_starttls_password_file(outpost_module, pwfile):
    """STARTTLS with a password file: queued; the stored message has CRLF
    line ends, a dot-stuffed line survives and Bcc-less headers are kept."""
    o = outpost_module
    before = set(o.queue_ids())
    msg = (b"From: " + USER.encode() + b"\nTo: " + RCPT.encode() +
           b"\nSubject: lf test\n\nline one\n.leading dot\n..two dots\nlast")
    r = send(base_args(o) + ["--password-file", pwfile, "--to", RCPT], msg)
    assert r.returncode == 0, r.stderr
    qid = qid_of(o, before)
    env, body = o.stored(qid)
    assert b"\r\n.leading dot\r\n..two dots\r\nlast\r\n" in body
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert RCPT.encode() in env


def test_send_implicit_password_command(outpost_module):
    """Implicit TLS (port 465 style) with --password-command, recipients
    taken from the header (To/Cc/Bcc), Bcc removed."""
    o = outpost_module
    before = set(o.queue_ids())
    msg = (b"From: " + USER.encode() + b"\r\nTo: Bob <bob@example.org>\r\n"
           b"Cc: carol@example.org (Carol)\r\nBcc: dave@example.org\r\n"
           b"Subject: x\r\n\r\nhi\r\n")
    r = send(base_args(o, o.port_tls, "implicit") +
             ["--password-command", "printf '%s\\n'" % PASSWORD.replace(" ", "\\040")], msg)
    assert r.returncode == 0, r.stderr
    env, body = o.stored(qid_of(o, before))
    for a in (b"bob@example.org", b"carol@example.org", b"dave@example.org"):
        assert a in env
    assert b"Bcc:" not in body and b"dave@" not in body


def test_send_env_password_and_built_message(outpost_module):
    """$OUTPOST_PASSWORD and a message built from --to/--subject."""
    o = outpost_module
    before = set(o.queue_ids())
    r = send(base_args(o) + ["--to", RCPT, "--subject", "built"], b"the body\n",
             env={"OUTPOST_PASSWORD": PASSWORD})
    assert r.returncode == 0, r.stderr
    _, body = o.stored(qid_of(o, before))
    assert b"Subject: built\r\n" in body and b"To: " + RCPT.encode() in body
    assert body.endswith(b"the body\r\n")


def test_send_wrong_password_535(outpost_module):
    """A wrong password: EX_NOPERM and the server's 535 line quoted."""
    o = outpost_module
    r = send(base_args(o) + ["--to", RCPT], env={"OUTPOST_PASSWORD": "wrong one"})
    assert r.returncode == EX_NOPERM, r
    err = r.stderr.decode()
    assert "535 5.7.8" in err and "app password" in err


def test_send_no_password_anywhere(outpost_module):
    """A user without any secret source is refused before connecting;
    there is no --password option (secrets never on the command line)."""
    o = outpost_module
    r = send(base_args(o) + ["--to", RCPT])
    assert r.returncode == EX_NOPERM and b"OUTPOST_PASSWORD" in r.stderr
    r = send(base_args(o) + ["--to", RCPT, "--password", "x"])
    assert r.returncode == EX_USAGE


def test_send_app_password_and_2fa_534(outpost_module, tmp_path):
    """With 2FA on, the regular password gets 534 5.7.9 and the app
    password works (spaces in it are fine)."""
    o = outpost_module
    user = "carol2fa@example.test"
    r = o.cli("user", "add", user, input=b"regular pass 1\n")
    assert r.returncode == 0, r
    enrol_2fa(o, user)
    ap = apppass_add(o, "cli", user)
    args = base_args(o)
    args[args.index(USER)] = user
    args[args.index(USER)] = user
    r = send(args + ["--to", RCPT], env={"OUTPOST_PASSWORD": "regular pass 1"})
    assert r.returncode == EX_NOPERM and b"534 5.7.9" in r.stderr, r
    before = set(o.queue_ids())
    r = send(args + ["--to", RCPT], env={"OUTPOST_PASSWORD": ap})
    assert r.returncode == 0, r.stderr
    qid_of(o, before)


def test_send_accounts_file(outpost_module, tmp_path):
    """-a NAME reads the accounts file; an unknown key is an error with
    FILE:LINE; tls = none needs insecure_plaintext."""
    o = outpost_module
    cfg = tmp_path / "cfg" / "outpost"
    cfg.mkdir(parents=True)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    (cfg / "accounts").write_text(
        "# test\ndefault = local\n\n[local]\nhost = 127.0.0.1\nport = %d\n"
        "tls = implicit\nuser = %s\npassword_file = %s\nca_file = %s\n"
        "tls_servername = localhost\nfrom = %s\n\n[gm]\nprovider = gmail\n"
        % (o.port_tls, USER, pw, o.ca, USER))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    before = set(o.queue_ids())
    r = send(["--to", RCPT], env=env)
    assert r.returncode == 0, r.stderr
    qid_of(o, before)
    r = send(["-a", "local", "--to", RCPT], env=env)
    assert r.returncode == 0, r.stderr
    (cfg / "accounts").write_text("[a]\nhost = x\nbogus = 1\n")
    r = send(["--to", RCPT], env=env)
    assert r.returncode == EX_CONFIG and b"accounts:3: unknown key" in r.stderr, r
    (cfg / "accounts").write_text("[a]\nhost = 127.0.0.1\ntls = none\n")
    r = send(["--to", RCPT, "--from", USER], env=env)
    assert r.returncode == EX_CONFIG and b"insecure" in r.stderr, r


def test_send_refused_and_unresolvable(outpost_module):
    o = outpost_module
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = send(base_args(o, port) + ["--to", RCPT], env={"OUTPOST_PASSWORD": "x"})
    assert r.returncode == EX_UNAVAILABLE and b"refused" in r.stderr, r
    r = send(["--host", "no-such-host.invalid", "--from", USER, "--to", RCPT])
    assert r.returncode in (EX_NOHOST, EX_TEMPFAIL), r
    assert b"resolve" in r.stderr


def test_send_wrong_security_type(outpost_module):
    """Implicit TLS against the STARTTLS port says so."""
    o = outpost_module
    r = send(base_args(o, o.port, "implicit") + ["--to", RCPT],
             env={"OUTPOST_PASSWORD": PASSWORD})
    assert r.returncode == EX_PROTOCOL, r
    assert b"plaintext" in r.stderr and b"--tls starttls" in r.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    ca = smtpfake.make_ca(d)
    good = smtpfake.make_leaf(d, ca, ["localhost", "127.0.0.1"], tag="good")
    expired = smtpfake.make_leaf(d, ca, ["localhost", "127.0.0.1"], (-60, -1), "expired")
    wrong = smtpfake.make_leaf(d, ca, ["other.example"], tag="wrong")
    return {"ca": ca[2], "good": good, "expired": expired, "wrong": wrong}


def fake_args(port, ca, tls="implicit"):
    return ["--host", "127.0.0.1", "--port", str(port), "--tls", tls,
            "--ca-file", ca, "--user", "u@example.org", "--from", "u@example.org",
            "--to", RCPT, "--timeout", "10"]


def implicit_session(conn):
    conn.send(b"220 fake ESMTP\r\n")
    conn.ehlo_session(smtpfake.EHLO_AFTER_TLS)


@pytest.mark.parametrize("which,words", [("expired", b"expired"),
                                         ("wrong", b"mismatch")])
def test_send_bad_certificates(certs, which, words):
    """Expired and wrong-name certificates are refused before AUTH."""
    with smtpfake.FakeSMTP(implicit_session, "implicit", certs[which]) as f:
        r = send(fake_args(f.port, certs["ca"]), env={"OUTPOST_PASSWORD": "x"})
        assert r.returncode == EX_PROTOCOL, r
        assert b"certificate" in r.stderr and words in r.stderr.lower(), r.stderr
        assert not any(l.startswith(b"AUTH") for l in f.received)
    with smtpfake.FakeSMTP(implicit_session, "implicit", certs["good"]) as f:
        r = send(fake_args(f.port, certs["ca"]), env={"OUTPOST_PASSWORD": "x"})
        assert r.returncode == 0, r.stderr
        assert len(f.messages) == 1


def test_send_huge_reply_line(certs):
    """A 300 KB reply line is a protocol error, not a growing buffer."""
    def script(conn):
        conn.send(b"220 fake\r\n")
        conn.readline()
        conn.send(b"250-" + b"x" * 300000 + b"\r\n250 ok\r\n")
        conn.readline()
    with smtpfake.FakeSMTP(script, "implicit", certs["good"]) as f:
        r = send(fake_args(f.port, certs["ca"]), env={"OUTPOST_PASSWORD": "x"})
        assert r.returncode == EX_PROTOCOL, r
        assert b"longer than 4096" in r.stderr


def test_send_starttls_injection_discarded(certs):
    """Plaintext the server pipelines after its 220 to STARTTLS is
    discarded (RFC 3207 4.2): the client still sees the real EHLO reply."""
    def script(conn):
        conn.send(b"220 fake ESMTP\r\n")
        conn.readline()
        conn.send(smtpfake.EHLO_TLS)
        conn.readline()
        conn.send(b"220 2.0.0 go\r\n250-INJECTED\r\n250 AUTH PLAIN\r\n")
        conn.starttls()
        conn.ehlo_session(smtpfake.EHLO_AFTER_TLS)
    with smtpfake.FakeSMTP(script, "starttls", certs["good"]) as f:
        r = send(fake_args(f.port, certs["ca"], "starttls"),
                 env={"OUTPOST_PASSWORD": "x"})
        assert r.returncode == 0, r.stderr
        ehlos = [l for l in f.received if l.startswith(b"EHLO")]
        assert len(ehlos) == 2 and len(f.messages) == 1


def test_send_one_recipient_refused(certs):
    """A 550 for one recipient: the others get the message, the refusal
    is printed with the server's words, exit EX_UNAVAILABLE."""
    def script(conn):
        conn.send(b"220 fake ESMTP\r\n")
        conn.ehlo_session(smtpfake.EHLO_AFTER_TLS, rcpt_reply=lambda a:
                          b"550 5.1.1 no such user here\r\n" if a.startswith("bad")
                          else b"250 2.1.5 ok\r\n")
    with smtpfake.FakeSMTP(script, "implicit", certs["good"]) as f:
        r = send(fake_args(f.port, certs["ca"]) + ["--to", "bad@example.org"],
                 env={"OUTPOST_PASSWORD": "x"})
        assert r.returncode == EX_UNAVAILABLE, r
        assert b"<bad@example.org> refused: 550 5.1.1 no such user here" in r.stderr
        assert len(f.messages) == 1

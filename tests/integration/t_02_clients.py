"""Real clients the project did not write: swaks, msmtp, openssl s_client."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import PASSWORD, QID_RE, RCPT, USER, simple_message

# These tests share one daemon: they only add messages and check their own ids.

need_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
need_msmtp = pytest.mark.skipif(shutil.which("msmtp") is None, reason="msmtp not installed")
need_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def swaks(o, port, tls_flag, auth, extra=()):
    cmd = ["swaks", "--server", o.host, "--port", str(port), tls_flag,
           "--tls-verify", "--tls-ca-path", o.ca,
           "--auth", auth, "--auth-user", USER, "--auth-password", PASSWORD,
           "--from", USER, "--to", RCPT, "--helo", "client.example.test",
           "--header", "Subject: swaks test", "--body", "Sent by swaks.\n.dot\n",
           "--timeout", "20"] + list(extra)
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "swaks failed (%s):\n%s" % (r.returncode, out)
    m = re.findall(r"<[-~]\s+250 2\.0\.0 OK (" + QID_RE + r")\s*$", out, re.M)
    assert len(m) == 1, "no '250 2.0.0 OK <qid>' in swaks output:\n" + out
    return m[0], out


@need_swaks
@pytest.mark.parametrize("auth", ["PLAIN", "LOGIN"])
def test_swaks_starttls(outpost_module, auth):
    """swaks --tls (STARTTLS) with AUTH PLAIN/LOGIN and certificate verification gets its message queued."""
    o = outpost_module
    qid, out = swaks(o, o.port, "--tls", auth)
    assert qid in o.queue_ids()
    assert qid in o.queue_list()


@need_swaks
@pytest.mark.parametrize("auth", ["PLAIN", "LOGIN"])
def test_swaks_tls_on_connect(outpost_module, auth):
    """swaks --tls-on-connect (implicit TLS) with AUTH PLAIN/LOGIN gets its message queued."""
    o = outpost_module
    qid, out = swaks(o, o.port_tls, "--tls-on-connect", auth)
    assert qid in o.queue_ids()
    env, msg = o.stored(qid)
    assert b"\r\n.dot\r\n" in msg


@need_swaks
def test_swaks_wrong_password(outpost_module):
    """swaks with a wrong password sees 535 5.7.8 and nothing is queued."""
    o = outpost_module
    before = set(o.queue_ids())
    cmd = ["swaks", "--server", o.host, "--port", str(o.port_tls),
           "--tls-on-connect", "--tls-verify", "--tls-ca-path", o.ca,
           "--auth", "PLAIN", "--auth-user", USER, "--auth-password", "wrong",
           "--from", USER, "--to", RCPT, "--timeout", "20"]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0
    assert re.search(r"<[-~]\*?\s+535 5\.7\.8 ", out), out
    assert set(o.queue_ids()) == before


def msmtp_send(o, starttls, auth="plain", host="127.0.0.1"):
    d = os.path.join(o.dir, "msmtp-%s-%s-%s" % ("starttls" if starttls else "tls", auth, host))
    os.makedirs(d, exist_ok=True)
    pwfile = os.path.join(d, "password")
    with open(pwfile, "w") as f:
        f.write(PASSWORD + "\n")
    os.chmod(pwfile, 0o600)
    logfile = os.path.join(d, "msmtp.log")
    rc = os.path.join(d, "msmtprc")
    with open(rc, "w") as f:
        f.write("defaults\n"
                "tls on\n"
                "tls_trust_file %s\n"
                "logfile %s\n"
                "timeout 20\n"
                "\n"
                "account default\n"
                "host %s\n"
                "port %d\n"
                "tls_starttls %s\n"
                "domain client.example.test\n"
                "from %s\n"
                "auth %s\n"
                "user %s\n"
                "passwordeval cat %s\n"
                % (o.ca, logfile, host, o.port if starttls else o.port_tls,
                   "on" if starttls else "off", USER, auth, USER, pwfile))
    os.chmod(rc, 0o600)
    msg = simple_message("msmtp", b"Sent by msmtp.\r\n.dot line\r\n")
    r = subprocess.run(["msmtp", "-C", rc, "-a", "default", RCPT],
                       input=msg, capture_output=True, timeout=60)
    log = open(logfile).read() if os.path.exists(logfile) else ""
    assert r.returncode == 0, "msmtp failed (%s): %r %r\nlog: %s" % (
        r.returncode, r.stdout, r.stderr, log)
    m = re.findall(r"250 2\.0\.0 OK (" + QID_RE + r")", log)
    assert len(m) == 1, "no queue id in msmtp log: %r" % log
    return m[0]


@need_msmtp
@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit"])
@pytest.mark.parametrize("auth", ["plain", "login"])
def test_msmtp(outpost_module, starttls, auth):
    """msmtp with tls_trust_file and passwordeval gets its message queued on both ports."""
    o = outpost_module
    qid = msmtp_send(o, starttls, auth)
    assert qid in o.queue_ids()
    env, msg = o.stored(qid)
    assert b"Sent by msmtp.\r\n.dot line\r\n" in msg


@need_msmtp
def test_msmtp_by_name(outpost_module):
    """msmtp connecting by the name 'localhost' verifies the certificate and submits."""
    o = outpost_module
    qid = msmtp_send(o, True, "plain", host="localhost")
    assert qid in o.queue_ids()


# --------------------------------------------------------------------------
# openssl s_client

def s_client(o, port, starttls, *args):
    cmd = ["openssl", "s_client", "-connect", "%s:%d" % (o.host, port),
           "-CAfile", o.ca, "-verify_return_error", "-brief", "-crlf"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    cmd += list(args)
    r = subprocess.run(cmd, input=b"QUIT\n", capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    return r.returncode, out


@need_openssl
@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit"])
@pytest.mark.parametrize("version,label", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_openssl_versions_ok(outpost_module, starttls, version, label):
    """TLS 1.2 and 1.3 handshakes succeed and the certificate verifies for 'localhost'."""
    o = outpost_module
    port = o.port if starttls else o.port_tls
    rc, out = s_client(o, port, starttls, version, "-servername", "localhost",
                       "-verify_hostname", "localhost")
    assert rc == 0, out
    assert "Protocol version: " + label in out, out
    assert re.search(r"Verification: OK", out), out


@need_openssl
@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit"])
def test_openssl_verify_ip(outpost_module, starttls):
    """The certificate verifies against the CA for the address 127.0.0.1."""
    o = outpost_module
    port = o.port if starttls else o.port_tls
    rc, out = s_client(o, port, starttls, "-verify_ip", "127.0.0.1")
    assert rc == 0, out
    assert "Verification: OK" in out, out


@need_openssl
def test_openssl_wrong_name_fails(outpost_module):
    """Sanity of the verification check itself: a name not in the certificate fails."""
    o = outpost_module
    rc, out = s_client(o, o.port_tls, False, "-verify_hostname", "not-this-host.invalid")
    assert rc != 0, out


@need_openssl
@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit"])
@pytest.mark.parametrize("version", ["-tls1_1", "-tls1"])
def test_openssl_old_tls_refused(outpost_module, starttls, version):
    """TLS 1.0 and 1.1 handshakes fail (even when the client allows them), and the daemon keeps serving."""
    o = outpost_module
    port = o.port if starttls else o.port_tls
    rc, out = s_client(o, port, starttls, version, "-cipher", "DEFAULT@SECLEVEL=0")
    assert rc != 0, out
    assert "Protocol version: TLSv1.1" not in out and "Protocol version: TLSv1\n" not in out, out
    assert o.noop_works()

"""`outpost doctor` against outpostd and against sockets and fake servers
playing each failure: a port whose backlog is full (SYNs dropped, the
firewall case), a closed port, implicit TLS probed as STARTTLS and the
reverse, expired and wrong-name certificates, 535 and 534 5.7.9 (outpostd
with 2FA), --json."""
import json
import os
import socket
import subprocess

import pytest

from conftest import OUTPOST, PASSWORD, USER
import smtpfake
from t_40_security import enrol_2fa


def doctor(args, env=None):
    e = dict(os.environ)
    e.pop("OUTPOST_PASSWORD", None)
    e.update(env or {})
    return subprocess.run([OUTPOST, "doctor"] + list(args), capture_output=True,
                          timeout=60, env=e)


def lines(r):
    return r.stdout.decode()


def test_doctor_all_ok_with_login(outpost_module):
    o = outpost_module
    r = doctor(["127.0.0.1:%d" % o.port, "--ca-file", o.ca, "--tls-servername",
                "localhost", "--user", USER], env={"OUTPOST_PASSWORD": PASSWORD})
    out = lines(r)
    assert r.returncode == 0, out + r.stderr.decode()
    for step in ("dns", "tcp", "security", "tls", "ehlo", "auth"):
        assert any(l.startswith("ok") and l.split()[1] == step
                   for l in out.splitlines()), (step, out)
    assert "AUTH PLAIN LOGIN" in out and "nothing was sent" in out


def test_doctor_json(outpost_module):
    o = outpost_module
    r = doctor(["127.0.0.1:%d" % o.port_tls, "--tls", "implicit", "--ca-file",
                o.ca, "--tls-servername", "localhost", "--json"])
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"] is True, doc
    assert [s["step"] for s in doc["steps"]] == ["dns", "tcp", "security",
                                                  "tls", "ehlo", "auth"]
    assert doc["steps"][-1]["verdict"] == "skip"


def test_doctor_full_backlog_times_out():
    """A listening socket whose accept queue is full drops SYNs: the
    doctor reports a timeout and blames a firewall, suggesting 465/587."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        probe = socket.socket()
        probe.settimeout(1.0)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("the kernel completed a handshake on a full backlog")
        except socket.timeout:
            pass
        finally:
            probe.close()
        r = doctor(["127.0.0.1:%d" % port, "--connect-timeout", "1"])
        out = lines(r)
        assert r.returncode == 69, out
        assert "FAIL  tcp" in out and "timed out" in out
        assert "firewall" in out and "try port 465" in out
    finally:
        for c in fillers:
            c.close()
        ls.close()


def test_doctor_closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = doctor(["127.0.0.1:%d" % port])
    out = lines(r)
    assert r.returncode == 69 and "nothing listens there" in out, out


def test_doctor_unresolvable():
    r = doctor(["no-such-host.invalid:587"])
    out = lines(r)
    assert r.returncode == 69 and "FAIL  dns" in out, out


def test_doctor_implicit_port_probed_as_starttls(outpost_module):
    o = outpost_module
    r = doctor(["127.0.0.1:%d" % o.port_tls, "--tls", "starttls", "--ca-file",
                o.ca, "--timeout", "2"])
    out = lines(r)
    assert r.returncode == 69, out
    assert "expects SSL/TLS from the start" in out
    assert "set the security type to SSL/TLS" in out
    assert "ok    ehlo" in out          # the rest is checked over TLS


def test_doctor_starttls_port_probed_as_implicit(outpost_module):
    o = outpost_module
    r = doctor(["127.0.0.1:%d" % o.port, "--tls", "implicit", "--ca-file",
                o.ca, "--tls-servername", "localhost"])
    out = lines(r)
    assert r.returncode == 69, out
    assert "uses STARTTLS" in out and "set the security type to STARTTLS" in out


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("dcerts"))
    ca = smtpfake.make_ca(d)
    return {"ca": ca[2],
            "expired": smtpfake.make_leaf(d, ca, ["localhost", "127.0.0.1"],
                                          (-60, -1), "expired"),
            "wrong": smtpfake.make_leaf(d, ca, ["other.example"], tag="wrong"),
            "soon": smtpfake.make_leaf(d, ca, ["localhost", "127.0.0.1"],
                                       (-60, 3), "soon")}


def implicit_session(conn):
    conn.send(b"220 fake ESMTP\r\n")
    conn.ehlo_session(smtpfake.EHLO_AFTER_TLS)


@pytest.mark.parametrize("which,verdict,words", [
    ("expired", "FAIL", "has expired"),
    ("wrong", "FAIL", "is not for \"127.0.0.1\" (it is for: other.example)"),
    ("soon", "warn", "expires soon"),
])
def test_doctor_certificates(certs, which, verdict, words):
    with smtpfake.FakeSMTP(implicit_session, "implicit", certs[which]) as f:
        r = doctor(["127.0.0.1:%d" % f.port, "--tls", "implicit", "--ca-file",
                    certs["ca"]])
    out = lines(r)
    assert ("%-4s  tls" % verdict) in out and words in out, out


def test_doctor_535_and_534(outpost_module):
    o = outpost_module
    base = ["127.0.0.1:%d" % o.port, "--ca-file", o.ca, "--tls-servername",
            "localhost"]
    r = doctor(base + ["--user", USER], env={"OUTPOST_PASSWORD": "wrong"})
    out = lines(r)
    assert r.returncode == 69 and "535 5.7.8" in out, out
    assert "two-factor authentication and needs an app password" in out
    user = "doc2fa@example.test"
    assert o.cli("user", "add", user, input=b"regular pass 2\n").returncode == 0
    enrol_2fa(o, user)
    r = doctor(base + ["--user", user], env={"OUTPOST_PASSWORD": "regular pass 2"})
    out = lines(r)
    assert r.returncode == 69 and "534 5.7.9" in out, out
    assert "requires an app password" in out

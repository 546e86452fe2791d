"""
Smarthost mode: every message goes to one relay (like smtp.gmail.com:587
with an app password), over STARTTLS with a verified certificate and
AUTH.  The relay is python3-aiosmtpd with STARTTLS and an authenticator;
the certificate is the test setup's own (SAN localhost), trusted through
[delivery] ca_file.
"""
import os
import re
import ssl
import subprocess

import pytest

from conftest import OUTPOSTD, USER, free_port, simple_message, wait_until
from dlvtest import ZoneDNS, delivery_overrides, wait_log, wait_queue_empty

RELAY_USER = "relay@example.test"
RELAY_PASS = "abcd efgh ijkl mnop"


class AuthRelay:
    def __init__(self, certdir, port=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        outer = self
        self.messages = []
        self.logins = []

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and
                  auth_data.login == RELAY_USER.encode() and
                  auth_data.password == RELAY_PASS.encode())
            outer.logins.append((mechanism, ok))
            return AuthResult(success=ok)

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append((envelope.mail_from,
                                       list(envelope.rcpt_tos),
                                       envelope.original_content))
                return "250 2.0.0 OK relayed"

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certdir, "server.crt"),
                            os.path.join(certdir, "server.key"))
        self.port = port or free_port()
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port,
            tls_context=ctx, require_starttls=True,
            authenticator=authenticator, auth_required=True)
        self.controller.start()

    def stop(self):
        self.controller.stop()


@pytest.fixture
def dns():
    d = ZoneDNS({"localhost": [("A", "127.0.0.1")]})
    yield d
    d.stop()


def smarthost_conf(o, dns, relay, password=RELAY_PASS, **extra):
    pw = os.path.join(o.dir, "relay.pass")
    with open(pw, "w") as f:
        f.write(password + "\n")
    os.chmod(pw, 0o600)
    d = delivery_overrides(dns, 25, smarthost="localhost:%d" % relay.port,
                           smarthost_tls="starttls",
                           smarthost_user=RELAY_USER,
                           smarthost_password_file=pw,
                           ca_file=os.path.join(o.dir, "tls", "ca.crt"),
                           **extra)
    del d["delivery"]["port"]
    return d


def test_smarthost_with_auth_over_verified_tls(make_outpost, dns):
    o = make_outpost(start=False)
    relay = AuthRelay(os.path.join(o.dir, "tls"))
    try:
        o.edit_conf(smarthost_conf(o, dns, relay))
        o.start()
        qid = o.send_raw(simple_message("via relay"),
                         rcpts=["someone@anywhere.test", "x@else.test"])
        assert wait_until(lambda: relay.messages, timeout=20), \
            o.log_text()[-3000:]
        frm, rcpts, data = relay.messages[0]
        assert frm == USER
        assert sorted(rcpts) == ["someone@anywhere.test", "x@else.test"]
        assert b"Subject: via relay" in data
        assert ("PLAIN", True) in relay.logins or ("LOGIN", True) in relay.logins
        wait_log(o, re.compile(qid + r": to=<someone@anywhere\.test>, "
                               r"relay=localhost\[127\.0\.0\.1\]:\d+, .*"
                               r"tls=TLSv1\.[23], .*status=sent"))
        wait_queue_empty(o)
        # the password never reaches the log
        assert RELAY_PASS not in o.log_text()
    finally:
        relay.stop()


def test_smarthost_wrong_password_defers(make_outpost, dns):
    o = make_outpost(start=False)
    relay = AuthRelay(os.path.join(o.dir, "tls"))
    try:
        o.edit_conf(smarthost_conf(o, dns, relay, password="wrong",
                                   retry_interval="60s",
                                   max_retry_interval="60s"))
        o.start()
        qid = o.send_raw(simple_message(), rcpts=["w@anywhere.test"])
        wait_log(o, re.compile(qid + r": to=<w@anywhere\.test>, .*"
                               r"status=deferred \(.*smarthost refused"))
        assert not relay.messages
        assert qid in o.queue_list()
    finally:
        relay.stop()


def test_smarthost_untrusted_certificate_defers(make_outpost, dns):
    """Without ca_file the local CA is not trusted: credentials are
    never sent, the message waits."""
    o = make_outpost(start=False)
    relay = AuthRelay(os.path.join(o.dir, "tls"))
    try:
        conf = smarthost_conf(o, dns, relay, retry_interval="60s",
                              max_retry_interval="60s")
        del conf["delivery"]["ca_file"]
        o.edit_conf(conf)
        o.start()
        qid = o.send_raw(simple_message(), rcpts=["u@anywhere.test"])
        wait_log(o, re.compile(qid + r": to=<u@anywhere\.test>, .*"
                               r"status=deferred"))
        assert not relay.logins and not relay.messages
    finally:
        relay.stop()


def test_smarthost_credentials_without_tls_refused(make_outpost, dns):
    o = make_outpost(start=False)
    pw = os.path.join(o.dir, "relay.pass")
    with open(pw, "w") as f:
        f.write("secret\n")
    o.edit_conf({"delivery": {"smarthost": "localhost:2525",
                              "smarthost_tls": "none",
                              "smarthost_user": RELAY_USER,
                              "smarthost_password_file": pw}})
    r = subprocess.run([OUTPOSTD, "-c", o.conf], capture_output=True,
                       timeout=30)
    assert r.returncode != 0
    assert b"only sent over verified TLS" in r.stderr, r.stderr

"""OAuth2 on the server (issue 8): SASL XOAUTH2 and OAUTHBEARER with JWT
access tokens checked against a JWKS (file and URL), token introspection,
and Gmail's failure flow (334 + base64 JSON, then 535 5.7.8).

Tokens are minted here by independent code (PyJWT + cryptography) for
RS256, ES256 and EdDSA; the bad ones are built by hand where PyJWT would
refuse to make them (alg=none, HMAC with the public key, crit)."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import smtplib
import tempfile
import threading
import time
import urllib.parse

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import conftest
from conftest import RCPT, USER, simple_message

ISS = "https://idp.example.test/"
AUD = "outpost-smtp"
SCOPE = "mail.send"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ROT_KEY = ec.generate_private_key(ec.SECP256R1())   # "rotated in" later
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)



def _short_coord_key():
    """An EC key whose x or y starts with a zero octet: PyJWT's JWK then
    carries a 31-octet coordinate, which the server must left-pad."""
    for _ in range(5000):
        k = ec.generate_private_key(ec.SECP256R1())
        n = k.public_key().public_numbers()
        if n.x < (1 << 248) or n.y < (1 << 248):
            return k
    raise AssertionError("no short-coordinate key found")


SHORT_KEY = _short_coord_key()

KEYS = {"rsa1": ("RS256", RSA_KEY), "ec1": ("ES256", EC_KEY),
        "ecshort": ("ES256", SHORT_KEY),
        "ed1": ("EdDSA", ED_KEY), "rot1": ("ES256", ROT_KEY),
        "other": ("RS256", OTHER_KEY)}


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwk_of(kid):
    alg, key = KEYS[kid]
    pub = key.public_key()
    if alg == "RS256":
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
    elif alg == "ES256":
        d = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw,
                               serialization.PublicFormat.Raw)
        d = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    d["kid"] = kid
    d["use"] = "sig"
    return d


def jwks_doc(kids):
    return json.dumps({"keys": [jwk_of(k) for k in kids]})


def claims(**over):
    now = int(time.time())
    c = {"iss": ISS, "aud": AUD, "sub": "u-1", "email": USER,
         "scope": "openid " + SCOPE, "iat": now, "exp": now + 600}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def mint(kid="rsa1", typ="at+jwt", **over):
    alg, key = KEYS[kid]
    return jwt.encode(claims(**over), key, algorithm=alg,
                      headers={"kid": kid, "typ": typ})


def raw_jws(header, payload, sig=b""):
    return "%s.%s.%s" % (b64u(json.dumps(header).encode()),
                         b64u(json.dumps(payload).encode()), b64u(sig))


def xoauth2(user, token):
    return base64.b64encode(("user=%s\x01auth=Bearer %s\x01\x01"
                             % (user, token)).encode()).decode()


def oauthbearer(user, token):
    gs2 = "n,a=%s," % user.replace("=", "=3D").replace(",", "=2C") \
        if user else "n,,"
    return base64.b64encode(("%s\x01host=localhost\x01port=465\x01"
                             "auth=Bearer %s\x01\x01" % (gs2, token))
                            .encode()).decode()


JWKS_DIR = tempfile.mkdtemp(prefix="outpost-jwks-")
JWKS_FILE = os.path.join(JWKS_DIR, "jwks.json")
with open(JWKS_FILE, "w") as f:
    f.write(jwks_doc(["rsa1", "ec1", "ed1", "ecshort"]))

OAUTH = {"issuer": ISS, "audience": AUD, "required_scope": SCOPE}
OUTPOST_OVERRIDES = {"oauth2": dict(OAUTH, jwks_file=JWKS_FILE)}


def authed(o, mech, resp, initial=True):
    """Starts AUTH mech with resp; returns the dialog and the reply."""
    d = o.dialog("implicit")
    d.ehlo()
    if initial:
        d.cmd("AUTH %s %s" % (mech, resp))
    else:
        d.cmd("AUTH %s" % mech)
        d.expect(334)
        d.cmd(resp)
    return d, d.reply()


def expect_failure_flow(d, r, status="invalid_token", mech="OAUTHBEARER"):
    assert r.code == 334, r
    js = json.loads(base64.b64decode(r.lines[0]))
    if mech == "XOAUTH2":
        assert js["status"] == "401", js
    else:
        assert js["status"] == status, js
    assert js["schemes"] == "Bearer" and js["scope"] == SCOPE, js
    d.cmd("AQ==" if mech == "OAUTHBEARER" else "")
    d.expect(535, "5.7.8", "Username and Password not accepted")
    # the session goes on
    d.cmd("NOOP")
    d.expect(250)


def send_one(d):
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250)
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250)
    d.cmd("DATA")
    d.expect(354)
    d.send(simple_message().replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
    d.expect(250)


# ---------------------------------------------------------------------------

def test_advertised_only_after_tls(outpost_module):
    d = outpost_module.dialog("plain")
    caps = d.ehlo()
    assert not any(c.startswith("AUTH") for c in caps), caps
    d.cmd("AUTH XOAUTH2 " + xoauth2(USER, mint()))
    d.expect(530)
    d.close()
    d = outpost_module.dialog("starttls")
    caps = d.ehlo()
    assert "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER" in caps, caps
    d.close()


@pytest.mark.parametrize("kid", ["rsa1", "ec1", "ed1", "ecshort"])
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize("initial", [True, False])
def test_good_tokens(outpost_module, kid, mech, initial):
    tok = mint(kid)
    resp = xoauth2(USER, tok) if mech == "XOAUTH2" else oauthbearer(USER, tok)
    d, r = authed(outpost_module, mech, resp, initial)
    assert r.code == 235 and r.enhanced == "2.7.0", \
        (r, outpost_module.log_text()[-600:])
    send_one(d)
    d.close()
    assert ("method=%s, via=oauth2-token" % mech) in outpost_module.log_text()


def test_oauthbearer_without_authzid_and_scp_array(outpost_module):
    d, r = authed(outpost_module, "OAUTHBEARER",
                  oauthbearer("", mint("ec1", scope=[SCOPE, "x"])))
    assert r.code == 235, r
    send_one(d)
    d.close()


def test_smtplib_custom_auth(outpost_module):
    tok = mint("ed1")
    s = outpost_module.smtp_ssl(login=False)
    try:
        s.ehlo()
        assert "xoauth2" in s.esmtp_features["auth"].lower()
        code, _ = s.auth("XOAUTH2", lambda challenge=None:
                         "user=%s\x01auth=Bearer %s\x01\x01" % (USER, tok))
        assert code == 235
        s.sendmail(USER, [RCPT], simple_message())
        assert s.queue_id()
    finally:
        s.quit()


def bad_tokens():
    now = int(time.time())
    good_hdr = {"alg": "RS256", "kid": "rsa1", "typ": "at+jwt"}
    pub_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_hdr = {"alg": "HS256", "kid": "rsa1", "typ": "at+jwt"}
    hs_si = raw_jws(hs_hdr, claims())[:-1]
    hs = hs_si + b64u(hmac.new(pub_pem, hs_si[:-1].encode(),
                               hashlib.sha256).digest())
    t = mint("rsa1")
    h, p, sig = t.split(".")
    tampered_sig = h + "." + p + "." + b64u(bytes([base64.urlsafe_b64decode(
        sig + "==")[0] ^ 1]) + base64.urlsafe_b64decode(sig + "==")[1:])
    tampered_body = h + "." + b64u(json.dumps(claims(
        email="mallory@example.test")).encode()) + "." + sig
    crit = jwt.encode(claims(), RSA_KEY, algorithm="RS256",
                      headers={"kid": "rsa1", "typ": "at+jwt",
                               "crit": ["exp"], "exp": 1})
    # header says RS256 but names the EC key
    mismatch = jwt.encode(claims(), RSA_KEY, algorithm="RS256",
                          headers={"kid": "ec1", "typ": "at+jwt"})
    return {
        "expired": mint(exp=now - 3600, iat=now - 7200),
        "not-yet-valid": mint(nbf=now + 3600),
        "wrong-issuer": mint(iss="https://evil.example.test/"),
        "wrong-audience": mint(aud="someone-else"),
        "no-exp": mint(exp=None),
        "other-user": mint(email="bob@example.test"),
        "alg-none": raw_jws({"alg": "none", "typ": "at+jwt"}, claims()),
        "hmac-with-public-key": hs,
        "tampered-signature": tampered_sig,
        "tampered-claims": tampered_body,
        "unknown-kid": mint("other"),
        "crit": crit,
        "alg-kty-mismatch": mismatch,
        "typ-JWT-not-accepted": mint(typ="JWT"),
        "not-a-jwt": "abc.def",
        "bad-header-json": b64u(b"{nope") + ".e30." + b64u(b"x" * 256),
        "es256-short-signature": mint("ec1")[:-10],
        "good-header-garbage": raw_jws(good_hdr, claims(), b"\x00" * 256),
    }


@pytest.mark.parametrize("name", sorted(bad_tokens().keys()))
@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_bad_tokens_get_failure_flow(outpost_module, name, mech):
    tok = bad_tokens()[name]
    resp = xoauth2(USER, tok) if mech == "XOAUTH2" else oauthbearer(USER, tok)
    d, r = authed(outpost_module, mech, resp)
    expect_failure_flow(d, r, mech=mech)
    # and a good token still works in the same session
    d.cmd("AUTH %s %s" % (mech, xoauth2(USER, mint()) if mech == "XOAUTH2"
                          else oauthbearer(USER, mint())))
    d.expect(235)
    d.close()


def test_missing_scope_is_insufficient_scope(outpost_module):
    d, r = authed(outpost_module, "OAUTHBEARER",
                  oauthbearer(USER, mint(scope="openid profile")))
    expect_failure_flow(d, r, status="insufficient_scope")
    d.close()
    assert "reason=missing-scope" in outpost_module.log_text()


def test_unknown_account_with_valid_token(outpost_module):
    tok = mint(email="nobody@example.test")
    d, r = authed(outpost_module, "XOAUTH2", xoauth2("nobody@example.test",
                                                       tok))
    expect_failure_flow(d, r, mech="XOAUTH2")
    d.close()
    assert "reason=unknown-account" in outpost_module.log_text()


@pytest.mark.parametrize("resp", [
    "!!!notbase64", "=", base64.b64encode(b"user=x").decode(),
    base64.b64encode(b"p=tls-unique,,\x01auth=Bearer abc\x01\x01").decode(),
    base64.b64encode(b"n,,\x01auth=Basic abc\x01\x01").decode(),
    base64.b64encode(b"n,,\x01auth=Bearer a b\x01\x01").decode(),
    base64.b64encode(b"n,a=x=41,\x01auth=Bearer abc\x01\x01").decode(),
])
def test_garbage_responses(outpost_module, resp):
    d, r = authed(outpost_module, "OAUTHBEARER", resp)
    expect_failure_flow(d, r)
    d.close()


def test_cancel_after_error_challenge_is_535(outpost_module):
    d, r = authed(outpost_module, "OAUTHBEARER", oauthbearer(
        USER, mint(exp=int(time.time()) - 3600)))
    assert r.code == 334
    d.cmd("*")
    d.expect(535, "5.7.8")
    d.close()


def test_huge_token_hits_line_limit(outpost_module):
    d = outpost_module.dialog("implicit")
    d.ehlo()
    d.cmd("AUTH XOAUTH2 " + xoauth2(USER, "A" * 100000))
    d.expect(500, "5.5.2")
    d.cmd("NOOP")
    d.expect(250)
    # and in the challenge form
    d.cmd("AUTH OAUTHBEARER")
    d.expect(334)
    d.cmd("A" * 100000)
    d.expect(500, "5.5.2")
    d.cmd("NOOP")
    d.expect(250)
    d.cmd("AUTH XOAUTH2 " + xoauth2(USER, mint("ed1")))
    d.expect(235)
    d.close()


def test_disabled_and_2fa_accounts(make_outpost):
    from t_40_security import enrol_2fa
    o = make_outpost(OUTPOST_OVERRIDES)
    enrol_2fa(o)
    # 2FA on: the password alone is refused, a token is accepted
    d, r = authed(o, "XOAUTH2", xoauth2(USER, mint()))
    assert r.code == 235, r
    d.close()
    assert o.cli("user", "disable", USER).returncode == 0
    d, r = authed(o, "XOAUTH2", xoauth2(USER, mint()))
    expect_failure_flow(d, r, mech="XOAUTH2")
    d.close()
    assert "reason=account-disabled" in o.log_text()


def test_failures_are_throttled(make_outpost):
    o = make_outpost({"oauth2": dict(OAUTH, jwks_file=JWKS_FILE),
                      "limits": {"auth_failures": "3"}})
    bad = mint(iss="https://evil.example.test/")
    for _ in range(3):
        d, r = authed(o, "XOAUTH2", xoauth2(USER, bad))
        expect_failure_flow(d, r, mech="XOAUTH2")
        d.close()
    d, r = authed(o, "XOAUTH2", xoauth2(USER, mint()))
    assert r.code == 454 and r.enhanced == "4.7.0", r
    d.close()


def test_accepted_typ_and_scope_claim(make_outpost):
    o = make_outpost({"oauth2": dict(OAUTH, jwks_file=JWKS_FILE,
                                     accepted_typ="JWT at+jwt",
                                     scope_claim="scp")})
    d, r = authed(o, "OAUTHBEARER", oauthbearer(
        USER, mint(typ="JWT", scope=None, scp="mail.send other")))
    assert r.code == 235, r
    d.close()
    # "scope" is no longer looked at
    d, r = authed(o, "OAUTHBEARER", oauthbearer(USER, mint(typ="JWT")))
    expect_failure_flow(d, r, status="insufficient_scope")
    d.close()


def test_bad_jwks_file_stops_startup(make_outpost, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')
    # the daemon exits early without freeing: no leak report wanted
    o = make_outpost({"oauth2": dict(OAUTH, jwks_file=str(bad))},
                     env={"ASAN_OPTIONS": "detect_leaks=0"}, start=False)
    o.start(wait=False)
    o.proc.wait(timeout=10)
    assert o.proc.returncode != 0
    assert "no usable key" in o.log_text()
    o.proc = None


# --- JWKS over HTTP and introspection --------------------------------------

class _Provider(http.server.BaseHTTPRequestHandler):
    """JWKS at /jwks; RFC 7662 introspection at /introspect."""
    state = None

    def log_message(self, *a):
        pass

    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.state
        if self.path.startswith("/authorize?"):
            q = urllib.parse.parse_qs(self.path.split("?", 1)[1])
            st["auth_query"] = q
            st["challenge"] = q["code_challenge"][0]
            return self._send(200, {"consent": "POST /consent"})
        if self.path == "/jwks":
            st["jwks_hits"] += 1
            body = st["jwks"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self._send(404, {})

    def _token(self, st, form):
        st["token_hits"] = st.get("token_hits", 0) + 1
        st.setdefault("forms", []).append(form)
        g = form.get("grant_type", [""])[0]
        if g == "refresh_token" and \
                form.get("refresh_token", [""])[0] == st.get("rt") and \
                form.get("client_id", [""])[0] == "cid" and \
                form.get("client_secret", [""])[0] == "csecret":
            ans = {"access_token": mint("rsa1"), "token_type": "Bearer",
                   "expires_in": 3599, "scope": SCOPE}
            if st.get("rotate"):
                st["rt"] = st["rotate"]
                ans["refresh_token"] = st["rotate"]
            return self._send(200, ans)
        if g == "authorization_code" and \
                form.get("code", [""])[0] == st.get("code") and \
                form.get("code_verifier", [""])[0] and \
                base64.urlsafe_b64encode(hashlib.sha256(
                    form["code_verifier"][0].encode()).digest()).rstrip(
                    b"=").decode() == st.get("challenge"):
            return self._send(200, {"access_token": mint("rsa1"),
                                    "expires_in": 3599,
                                    "refresh_token": "rt-from-code"})
        self._send(400, {"error": "invalid_grant",
                         "error_description": "Token has been expired or "
                         "revoked."})

    def do_POST(self):
        st = self.state
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        if self.path == "/token":
            return self._token(st, form)
        if self.path == "/consent":
            q = st["auth_query"]
            st["code"] = "code-" + os.urandom(4).hex()
            self.send_response(302)
            self.send_header("Location", q["redirect_uri"][0] + "?" +
                             urllib.parse.urlencode(
                                 {"code": st["code"],
                                  "state": q["state"][0]}))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/introspect":
            return self._send(404, {})
        st["introspect_hits"] += 1
        auth = self.headers.get("Authorization", "")
        if auth != "Basic " + base64.b64encode(b"outpost:s3cret").decode():
            return self._send(401, {"error": "invalid_client"})
        tok = form.get("token", [""])[0]
        self._send(200, st["tokens"].get(tok, {"active": False}))


@pytest.fixture
def provider():
    st = {"jwks": jwks_doc(["rsa1"]), "jwks_hits": 0, "introspect_hits": 0,
          "tokens": {}}
    handler = type("H", (_Provider,), {"state": st})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    st["url"] = "http://127.0.0.1:%d" % srv.server_address[1]
    yield st
    srv.shutdown()
    srv.server_close()


def test_jwks_url_and_refresh_on_unknown_kid(make_outpost, provider):
    o = make_outpost({"oauth2": dict(OAUTH,
                                     jwks_url=provider["url"] + "/jwks")})
    d, r = authed(o, "XOAUTH2", xoauth2(USER, mint("rsa1")))
    assert r.code == 235, r
    d.close()
    assert provider["jwks_hits"] == 1
    # the provider rotates in a new key: an unknown kid refreshes once
    provider["jwks"] = jwks_doc(["rsa1", "rot1"])
    d, r = authed(o, "XOAUTH2", xoauth2(USER, mint("rot1")))
    assert r.code == 235, r
    d.close()
    assert provider["jwks_hits"] == 2
    # another unknown kid within the minute: no new fetch, refused
    d, r = authed(o, "XOAUTH2", xoauth2(USER, mint("other")))
    expect_failure_flow(d, r, mech="XOAUTH2")
    d.close()
    assert provider["jwks_hits"] == 2
    assert "reason=unknown-kid" in o.log_text()


def test_introspection(make_outpost, provider, tmp_path):
    cred = tmp_path / "introspect.cred"
    cred.write_text("outpost:s3cret\n")
    os.chmod(str(cred), 0o600)
    o = make_outpost({"oauth2": {
        "issuer": ISS, "audience": AUD, "required_scope": SCOPE,
        "introspection_url": provider["url"] + "/introspect",
        "introspection_credentials": str(cred)}})
    now = int(time.time())
    provider["tokens"] = {
        "opaque-good": {"active": True, "scope": "mail.send",
                        "username": USER, "exp": now + 600, "iss": ISS},
        "opaque-noscope": {"active": True, "scope": "read",
                           "username": USER, "exp": now + 600},
        "opaque-other": {"active": True, "scope": "mail.send",
                         "email": "bob@example.test", "exp": now + 600},
    }
    d, r = authed(o, "XOAUTH2", xoauth2(USER, "opaque-good"))
    assert r.code == 235, r
    send_one(d)
    d.close()
    assert provider["introspect_hits"] == 1
    # cached until exp: no second call
    d, r = authed(o, "OAUTHBEARER", oauthbearer(USER, "opaque-good"))
    assert r.code == 235, r
    d.close()
    assert provider["introspect_hits"] == 1
    for tok, status in (("opaque-revoked", "invalid_token"),
                        ("opaque-noscope", "insufficient_scope"),
                        ("opaque-other", "invalid_token")):
        d, r = authed(o, "OAUTHBEARER", oauthbearer(USER, tok))
        expect_failure_flow(d, r, status=status)
        d.close()
    assert provider["introspect_hits"] == 4


def test_introspection_endpoint_down_is_tempfail(make_outpost):
    port = conftest.free_port()
    o = make_outpost({"oauth2": {
        "introspection_url": "http://127.0.0.1:%d/introspect" % port}})
    d, r = authed(o, "XOAUTH2", xoauth2(USER, "opaque"))
    assert r.code == 454 and r.enhanced == "4.7.0", r
    d.cmd("NOOP")
    d.expect(250)
    d.close()


# --- outpost send with a token command --------------------------------------

def _send(o, tokfile, port, tls):
    import subprocess
    e = dict(os.environ)
    e.pop("OUTPOST_PASSWORD", None)
    e["HOME"] = "/nonexistent"
    return subprocess.run(
        [conftest.OUTPOST, "send", "--host", o.host, "--port", str(port),
         "--tls", tls, "--ca-file", o.ca, "--tls-servername", "localhost",
         "--user", USER, "--from", USER, "--timeout", "20", "--to", RCPT,
         "--subject", "oauth2", "--oauth2-token-command", "cat " + tokfile],
        input=b"via a token\n", capture_output=True, timeout=60, env=e)


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_outpost_send_with_token_command(outpost_module, tmp_path, tls):
    o = outpost_module
    tokfile = tmp_path / "tok"
    tokfile.write_text(mint("ec1") + "\n")
    before = set(o.queue_ids())
    r = _send(o, str(tokfile), o.port_tls if tls == "implicit" else o.port,
              tls)
    assert r.returncode == 0, r.stderr
    assert len(set(o.queue_ids()) - before) == 1
    # an expired token: refused with the server's 535 quoted
    tokfile.write_text(mint("ec1", exp=int(time.time()) - 3600) + "\n")
    r = _send(o, str(tokfile), o.port_tls if tls == "implicit" else o.port,
              tls)
    assert r.returncode == 77, r
    assert b"535 5.7.8" in r.stderr, r.stderr


# --- the client: refresh-token grant ---------------------------------------

def _client_env(o, tmp_path, provider_url, extra=""):
    cfg = tmp_path / "cfg" / "outpost"
    cfg.mkdir(parents=True, exist_ok=True)
    (tmp_path / "csecret").write_text("csecret\n")
    (tmp_path / "rt").write_text("rt-1\n")
    os.chmod(str(tmp_path / "rt"), 0o600)
    (cfg / "accounts").write_text(
        "[oa]\nhost = 127.0.0.1\nport = %d\ntls = implicit\nuser = %s\n"
        "ca_file = %s\ntls_servername = localhost\nfrom = %s\n"
        "auth = oauth2\noauth2_token_endpoint = %s/token\nclient_id = cid\n"
        "client_secret_file = %s\nrefresh_token_file = %s\n%s"
        % (o.port_tls, USER, o.ca, USER, provider_url, tmp_path / "csecret",
           tmp_path / "rt", extra))
    e = dict(os.environ)
    e.pop("OUTPOST_PASSWORD", None)
    e["HOME"] = "/nonexistent"
    e["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    return e


def _send_account(env, name="oa"):
    import subprocess
    return subprocess.run([conftest.OUTPOST, "send", "-a", name, "--to", RCPT,
                           "--subject", "oauth2", "--timeout", "20"],
                          input=b"refreshed\n", capture_output=True,
                          timeout=60, env=env)


def test_client_refresh_grant_cache_and_rotation(outpost_module, provider,
                                                 tmp_path):
    o = outpost_module
    provider["rt"] = "rt-1"
    provider["rotate"] = "rt-2"
    env = _client_env(o, tmp_path, provider["url"])
    before = set(o.queue_ids())
    r = _send_account(env)
    assert r.returncode == 0, r.stderr
    assert len(set(o.queue_ids()) - before) == 1
    assert provider["token_hits"] == 1
    f = provider["forms"][0]
    assert f["grant_type"] == ["refresh_token"] and f["client_id"] == ["cid"]
    # the rotated refresh token was stored, and the access token cached 0600
    assert (tmp_path / "rt").read_text().strip() == "rt-2"
    st = os.stat(str(tmp_path / "rt.access"))
    assert st.st_mode & 0o777 == 0o600
    assert oct(os.stat(str(tmp_path / "rt")).st_mode & 0o777) == "0o600"
    r = _send_account(env)
    assert r.returncode == 0, r.stderr
    assert provider["token_hits"] == 1          # from the cache
    # an expired cache entry: refreshed with the rotated token
    tok = (tmp_path / "rt.access").read_text().split(" ", 1)[1]
    (tmp_path / "rt.access").write_text("%d %s" % (time.time() - 10, tok))
    r = _send_account(env)
    assert r.returncode == 0, r.stderr
    assert provider["token_hits"] == 2
    assert provider["forms"][1]["refresh_token"] == ["rt-2"]


def test_client_refresh_refused(outpost_module, provider, tmp_path):
    o = outpost_module
    provider["rt"] = "something-else"
    env = _client_env(o, tmp_path, provider["url"])
    r = _send_account(env)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "invalid_grant" in err and "expired or revoked" in err, err
    assert "oauth2 authorize" in err
    assert not (tmp_path / "rt.access").exists()


def test_client_authorize_flow(outpost_module, provider, tmp_path):
    """`outpost oauth2 authorize`: the test plays the browser."""
    import subprocess
    import urllib.request
    o = outpost_module
    env = _client_env(o, tmp_path, provider["url"],
                      "oauth2_auth_endpoint = %s/authorize\n"
                      "oauth2_scope = %s\n" % (provider["url"], SCOPE))
    (tmp_path / "rt").unlink()
    p = subprocess.Popen([conftest.OUTPOST, "oauth2", "authorize", "-a", "oa",
                          "--timeout", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        url = None
        for _ in range(20):
            line = p.stdout.readline().decode()
            if line.startswith(provider["url"] + "/authorize?"):
                url = line.strip()
                break
        assert url, "no URL printed"
        q = urllib.parse.parse_qs(url.split("?", 1)[1])
        assert q["code_challenge_method"] == ["S256"]
        assert q["client_id"] == ["cid"] and q["scope"] == [SCOPE]
        redirect = q["redirect_uri"][0]
        assert redirect.startswith("http://127.0.0.1:")
        # a stray request and a forged state are ignored
        try:
            urllib.request.urlopen(redirect + "favicon.ico", timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 404
        try:
            urllib.request.urlopen(redirect + "?code=evil&state=forged",
                                   timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 400
        # the browser: open the URL, consent, follow the redirect
        urllib.request.urlopen(url, timeout=10).read()
        body = urllib.request.urlopen(urllib.request.Request(
            provider["url"] + "/consent", data=b"allow=1"),
            timeout=10).read()
        assert b"authorized" in body
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    rt = tmp_path / "rt"
    assert rt.read_text().strip() == "rt-from-code"
    assert os.stat(str(rt)).st_mode & 0o777 == 0o600
    assert os.stat(str(tmp_path / "rt.access")).st_mode & 0o777 == 0o600
    # and sending works with the stored token, without another refresh
    hits = provider["token_hits"]
    r = _send_account(env)
    assert r.returncode == 0, r.stderr
    assert provider["token_hits"] == hits


def test_client_authorize_refused(outpost_module, provider, tmp_path):
    import subprocess
    import urllib.request
    o = outpost_module
    env = _client_env(o, tmp_path, provider["url"],
                      "oauth2_auth_endpoint = %s/authorize\n"
                      % provider["url"])
    p = subprocess.Popen([conftest.OUTPOST, "oauth2", "authorize", "-a", "oa",
                          "--timeout", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        url = None
        for _ in range(20):
            line = p.stdout.readline().decode()
            if "/authorize?" in line:
                url = line.strip()
                break
        q = urllib.parse.parse_qs(url.split("?", 1)[1])
        urllib.request.urlopen(q["redirect_uri"][0] + "?" +
                               urllib.parse.urlencode(
                                   {"error": "access_denied",
                                    "state": q["state"][0]}),
                               timeout=10).read()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode != 0
    assert b"access_denied" in err
    assert (tmp_path / "rt").read_text().strip() == "rt-1"   # untouched


@pytest.mark.parametrize("token,words", [
    (lambda: mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
     "expired"),
    (lambda: mint(email="bob@example.test"), "token is for bob@example.test"),
    (lambda: mint(scope="openid"), "lacks mail.send"),
    (lambda: mint(iss="https://evil.example.test/"), "issuer, audience"),
    (lambda: mint(), None),
])
def test_doctor_explains_invalid_token(outpost_module, tmp_path, token,
                                       words):
    import subprocess
    o = outpost_module
    tokfile = tmp_path / "tok"
    tokfile.write_text(token() + "\n")
    e = dict(os.environ)
    e.pop("OUTPOST_PASSWORD", None)
    r = subprocess.run(
        [conftest.OUTPOST, "doctor", "127.0.0.1:%d" % o.port_tls, "--tls",
         "implicit", "--ca-file", o.ca, "--tls-servername", "localhost",
         "--user", USER, "--oauth2-token-command", "cat %s" % tokfile],
        capture_output=True, timeout=60, env=e)
    out = r.stdout.decode()
    if words is None:
        assert r.returncode == 0, out
        assert "XOAUTH2" in out and "nothing was sent" in out
    else:
        assert r.returncode != 0, out
        assert words in out, out

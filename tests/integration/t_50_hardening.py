"""Hardening: privilege drop, minimum data rate, graceful life cycle
(SIGTERM during DATA, SIGHUP with a bad config, certificate change under
established sessions)."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (OUTPOSTD, RCPT, USER, Closed, Outpost, simple_message,
                      wait_until)

TEST_USER = "outpost-test"


# --------------------------------------------------------------------------
# helpers

def tx_start(d, rcpts=(RCPT,)):
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    for r in rcpts:
        d.cmd("RCPT TO:<%s>" % r)
        d.expect(250, "2.1.5")


def proc_status(pid, tid=None):
    path = "/proc/%d/status" % pid if tid is None else \
        "/proc/%d/task/%d/status" % (pid, tid)
    out = {}
    with open(path) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            out[k] = v.split()
    return out


def new_cert(o, name, key_mode=0o600, key_group=None):
    """A fresh EC certificate for localhost signed by the setup's CA in
    DIR/tls/NAME.{crt,key}; returns the paths relative to DIR."""
    tls = os.path.join(o.dir, "tls")
    ext = os.path.join(o.dir, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*a):
        subprocess.run(a, capture_output=True, timeout=60, check=True)
    key = os.path.join(tls, name + ".key")
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
        "-subj", "/CN=localhost", "-out", os.path.join(tls, name + ".csr"))
    run("openssl", "x509", "-req", "-in", os.path.join(tls, name + ".csr"),
        "-CA", os.path.join(tls, "ca.crt"), "-CAkey", os.path.join(tls, "ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", ext,
        "-out", os.path.join(tls, name + ".crt"))
    os.chmod(key, key_mode)
    if key_group is not None:
        os.chown(key, 0, key_group)
    return "tls/%s.crt" % name, "tls/%s.key" % name


def peer_cert(o):
    import ssl
    ctx = ssl.create_default_context(cafile=o.ca)
    with socket.create_connection((o.host, o.port_tls), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


# --------------------------------------------------------------------------
# Privilege drop

def ensure_test_user():
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    r = subprocess.run(["useradd", "--system", "--no-create-home",
                        "--user-group", "--shell", "/usr/sbin/nologin",
                        TEST_USER], capture_output=True, timeout=30)
    if r.returncode != 0:
        pytest.fail("useradd %s failed: %r" % (TEST_USER, r.stderr))
    return pwd.getpwnam(TEST_USER)


@pytest.fixture
def rooted():
    """An Outpost under a directory the test user may traverse, started
    by root; yields a factory.  Cleans up like make_outpost."""
    if os.geteuid() != 0:
        pytest.skip("the privilege drop needs the tests to run as root")
    pw = ensure_test_user()
    base = tempfile.mkdtemp(prefix="outpost-priv-")
    os.chmod(base, 0o711)
    made = []

    def make(overrides=None, start=True):
        o = Outpost(overrides=overrides, basedir=base)
        os.chmod(o.dir, 0o711)
        os.chmod(o.conf, 0o644)     # SIGHUP re-reads it as the user
        made.append(o)
        if start:
            o.start()
        return o
    yield make, pw
    problems = []
    for o in made:
        p = o.cleanup()
        if p:
            problems.append("%s: %s\n%s" % (o.dir, "; ".join(p),
                                            o.log_text()[-3000:]))
    if not problems:
        shutil.rmtree(base, ignore_errors=True)
    else:
        pytest.fail("\n".join(problems), pytrace=False)


def test_privilege_drop(rooted):
    """Started as root with [server] user set, outpostd runs as that user (all ids, every thread, no groups, no capabilities), still accepts mail and the spool files belong to the user."""
    make, pw = rooted
    o = make({"server": {"user": TEST_USER}})
    uid, gid = str(pw.pw_uid), str(pw.pw_gid)
    # the ports accept (into the backlog) from bind() on, a moment before
    # the switch: wait for the daemon to say it is done
    assert wait_until(lambda: "dropped root" in o.log_text(), 10), \
        o.log_text()[-2000:]
    st = proc_status(o.pid)
    assert st["Uid"] == [uid] * 4, st["Uid"]
    assert st["Gid"] == [gid] * 4, st["Gid"]
    assert st.get("Groups", []) in ([], [gid]), st.get("Groups")
    assert st["CapEff"] == ["0000000000000000"], st["CapEff"]
    assert st["CapPrm"] == ["0000000000000000"], st["CapPrm"]
    assert st["NoNewPrivs"] == ["1"], st["NoNewPrivs"]
    for tid in os.listdir("/proc/%d/task" % o.pid):
        t = proc_status(o.pid, int(tid))
        assert t["Uid"] == [uid] * 4 and t["Gid"] == [gid] * 4, (tid, t["Uid"])
    assert re.search(r"dropped root: running as user %s \(uid %s\)"
                     % (TEST_USER, uid), o.log_text()), o.log_text()[-2000:]

    qid = o.send_raw(simple_message("after the drop"))
    assert qid in o.queue_ids()
    assert os.stat(o.queue_path(qid)).st_uid == pw.pw_uid
    for sub in ("", "queue", "tmp"):
        assert os.stat(os.path.join(o.spool, sub)).st_uid == pw.pw_uid, sub
    # the account database is the user's too (so logins keep working)
    db = os.path.join(o.dir, "data", "accounts.db")
    assert os.stat(db).st_uid == pw.pw_uid
    qid2 = o.send_raw(simple_message("second, STARTTLS"), mode="starttls")
    assert qid2 in o.queue_ids()


def test_privilege_drop_unknown_user(rooted):
    """A [server] user that does not exist stops the start-up with a clear error instead of serving as root."""
    make, _pw = rooted
    o = make({"server": {"user": "no-such-user-xyz"}}, start=False)
    r = subprocess.run([OUTPOSTD, "-c", o.conf], capture_output=True,
                       timeout=30)
    assert r.returncode == 78, (r.returncode, r.stderr)   # EX_CONFIG
    assert b"no-such-user-xyz" in r.stderr and b"no such user" in r.stderr, r.stderr


def test_privilege_drop_refuses_root_user(rooted):
    """[server] user = root is refused: outpostd does not serve as root by request."""
    make, _pw = rooted
    o = make({"server": {"user": "root"}}, start=False)
    r = subprocess.run([OUTPOSTD, "-c", o.conf], capture_output=True,
                       timeout=30)
    assert r.returncode == 78, (r.returncode, r.stderr)
    assert b"unprivileged" in r.stderr, r.stderr


def test_reload_after_drop(rooted):
    """After the drop, SIGHUP with a key only root can read is refused with a log line saying what to do (old certificate kept, still serving); a group-readable key is loaded."""
    make, pw = rooted
    o = make({"server": {"user": TEST_USER}})
    assert wait_until(lambda: "dropped root" in o.log_text(), 10), \
        o.log_text()[-2000:]
    old = peer_cert(o)
    crt, key = new_cert(o, "rootonly", key_mode=0o600)
    o.edit_conf({"tls": {"cert": crt, "key": key}})
    os.chmod(o.conf, 0o644)
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: "make the certificate and key readable"
                      in o.log_text(), 10), o.log_text()[-2000:]
    assert peer_cert(o) == old
    qid = o.send_raw(simple_message("old cert still"))
    assert qid in o.queue_ids()

    os.chmod(os.path.join(o.dir, "tls"), 0o750)
    os.chown(os.path.join(o.dir, "tls"), 0, pw.pw_gid)
    crt, key = new_cert(o, "grouped", key_mode=0o640, key_group=pw.pw_gid)
    o.edit_conf({"tls": {"cert": crt, "key": key}})
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: peer_cert(o) != old, 10, 0.2), \
        "group-readable certificate not reloaded:\n" + o.log_text()[-2000:]
    qid = o.send_raw(simple_message("new cert after drop"))
    assert qid in o.queue_ids()


def test_not_root_no_user_needed(make_outpost):
    """Without root nothing is dropped and no user is needed: as root with no [server] user and no 'outpost' account, a warning is logged and mail flows."""
    try:
        pwd.getpwnam("outpost")
        pytest.skip("an 'outpost' user exists here; the default drops to it")
    except KeyError:
        pass
    o = make_outpost()
    if os.geteuid() == 0:
        assert "useradd --system outpost" in o.log_text(), o.log_text()[-2000:]
    qid = o.send_raw(simple_message("no drop"))
    assert qid in o.queue_ids()


# --------------------------------------------------------------------------
# Minimum data rate

RATE = {"limits": {"data_timeout": "2s", "min_data_rate": "1000"}}


def trickle_until_closed(d, chunk=b"x" * 20 + b"\r\n", every=0.4, limit=40):
    """Sends a short line every `every` seconds (well inside the 2 s read
    timeout) until the server answers; returns that reply."""
    for _ in range(limit):
        try:
            d.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return d.reply(timeout=every)
        except socket.timeout:
            continue
    raise AssertionError("no reply to a trickling upload after %d chunks" % limit)


@pytest.mark.outpost_conf(RATE)
def test_min_data_rate_data(outpost_setup):
    """A DATA upload that trickles below min_data_rate (though never idle for data_timeout) gets 421 4.4.2 'Data rate too low', is closed, and nothing is queued."""
    o = outpost_setup
    d = o.session()
    tx_start(d)
    d.cmd("DATA")
    d.expect(354)
    d.send(simple_message("slow")[:-2])
    r = trickle_until_closed(d)
    assert r.code == 421 and r.enhanced == "4.4.2", r
    assert "Data rate too low" in r.text and "localhost" in r.text, r
    d.wait_closed()
    d.close()
    assert "data rate too low" in o.log_text()
    assert o.queue_files() == []
    assert wait_until(lambda: o.tmp_files() == [], 10), o.tmp_files()
    assert o.noop_works()


@pytest.mark.outpost_conf(RATE)
def test_min_data_rate_bdat(outpost_setup):
    """A BDAT chunk that trickles below min_data_rate gets 421 4.4.2 and nothing is queued."""
    o = outpost_setup
    d = o.session()
    tx_start(d)
    d.cmd("BDAT 100000 LAST")
    r = trickle_until_closed(d)
    assert r.code == 421 and r.enhanced == "4.4.2", r
    d.wait_closed()
    d.close()
    assert o.queue_files() == []
    assert o.noop_works()


@pytest.mark.outpost_conf({"limits": {"data_timeout": "2s",
                                      "min_data_rate": "1M"}})
def test_big_upload_on_slow_link(outpost_setup):
    """35 MB sent at about 5 MB/s (above min_data_rate = 1M/s, far longer than data_timeout = 2 s) is accepted: the limit is a rate, not a cap."""
    o = outpost_setup
    total = 35 * 1000 * 1000
    line = b"0123456789" * 7 + b"abcdef\r\n"      # 78 octets
    head = simple_message("big")
    body_lines = (total - len(head)) // len(line)
    block = line * 3200                             # ~250 KB
    nblocks, rest = divmod(body_lines, 3200)
    d = o.session()
    tx_start(d)
    d.cmd("DATA")
    d.expect(354)
    rate = 5e6
    t0 = time.monotonic()
    sent = 0
    d.send(head)
    for _ in range(nblocks):
        d.send(block)
        sent += len(block)
        lag = sent / rate - (time.monotonic() - t0)
        if lag > 0:
            time.sleep(lag)
    d.send(line * rest + b".\r\n")
    r = d.reply(timeout=120)
    elapsed = time.monotonic() - t0
    assert r.code == 250 and r.enhanced == "2.0.0", r
    qid = r.text.split()[-1]
    assert qid in o.queue_ids()
    assert os.path.getsize(o.queue_path(qid)) > total
    print("35 MB upload took %.1f s (data_timeout 2 s)" % elapsed)
    d.cmd("QUIT")
    d.expect(221)
    d.close()


# --------------------------------------------------------------------------
# Graceful life cycle

def test_sigterm_lets_data_finish(make_outpost):
    """SIGTERM while a client is in DATA: the upload finishes and is queued (250), then 421 and close, and outpostd exits 0; new connections are no longer accepted."""
    o = make_outpost()
    d = o.session()
    tx_start(d)
    d.cmd("DATA")
    d.expect(354)
    msg = simple_message("in flight", body=b"line\r\n" * 2000)
    half = len(msg) // 2
    d.send(msg[:half])
    o.signal(signal.SIGTERM)
    # the daemon stops listening; the session in DATA is left alone
    def refused():
        try:
            socket.create_connection((o.host, o.port), timeout=1).close()
            return False
        except OSError:
            return True
    assert wait_until(refused, 10, 0.05), "still accepting after SIGTERM"
    assert o.alive()
    d.send(msg[half:] + b".\r\n")
    r = d.reply()
    assert r.code == 250 and r.enhanced == "2.0.0", r
    qid = r.text.split()[-1]
    try:
        r2 = d.reply()
        assert r2.code == 421, r2
    except Closed:
        pass
    d.close()
    rc = o.proc.wait(timeout=30)
    assert rc == 0, o.log_text()[-2000:]
    o.proc = None
    assert qid in o.queue_ids()


def test_sighup_bad_config_keeps_old(make_outpost):
    """SIGHUP with a broken file is refused with the error logged and the old limits stay in force; once the file is fixed, SIGHUP applies it."""
    o = make_outpost({"limits": {"max_recipients": "2"}})
    o.edit_conf({"limits": {"max_recipients": "50", "idle_timeout": "soon"}})
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: "reload failed" in o.log_text(), 10), \
        o.log_text()[-2000:]
    assert re.search(r"reload failed.*outpost\.conf:\d+:.*idle_timeout",
                     o.log_text()), o.log_text()[-2000:]
    d = o.session()
    tx_start(d, ["a@example.org", "b@example.org"])
    d.cmd("RCPT TO:<c@example.org>")
    d.expect(452, "4.5.3")          # the old limit (2) is still in force
    d.cmd("RSET")
    d.expect(250)
    o.edit_conf({"limits": {"idle_timeout": "5m"}})
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: "reloaded" in o.log_text(), 10)
    tx_start(d, ["a@example.org", "b@example.org", "c@example.org"])
    d.cmd("QUIT")
    d.expect(221)
    d.close()
    assert o.alive()


def test_cert_change_keeps_established_sessions(make_outpost):
    """A new certificate picked up on SIGHUP serves new connections while a session established under the old one keeps going and sends mail."""
    o = make_outpost()
    old = peer_cert(o)
    d = o.session("implicit")
    d2 = o.session("starttls")
    crt, key = new_cert(o, "rotated")
    o.edit_conf({"tls": {"cert": crt, "key": key}})
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: peer_cert(o) != old, 10, 0.2), "not reloaded"
    for s in (d, d2):
        assert s.sock.getpeercert(binary_form=True) == old
        tx_start(s)
        s.cmd("DATA")
        s.expect(354)
        s.send(simple_message("old session") + b".\r\n")
        r = s.expect(250, "2.0.0")
        assert r.text.split()[-1] in o.queue_ids()
        s.cmd("QUIT")
        s.expect(221)
        s.close()

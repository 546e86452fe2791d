"""Configuration checks, start-up failures, the spool lock, SIGHUP."""
import os
import re
import signal
import subprocess

import pytest

from conftest import (OUTPOSTD, Outpost, conf_set, free_port, simple_message)


@pytest.fixture
def setup_only(make_outpost):
    """An initialised directory (user added) with no daemon running."""
    return make_outpost(start=False)


def check_config(conf):
    r = subprocess.run([OUTPOSTD, "-c", conf, "--check-config"],
                       capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def start_expect_failure(conf, env=None, timeout=15):
    """Runs outpostd expecting it to refuse to start: returns (status, output)."""
    p = subprocess.Popen([OUTPOSTD, "-c", conf], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=10)
        pytest.fail("outpostd kept running with a broken setup:\n%s"
                    % out.decode("utf-8", "replace"))
    return p.returncode, out.decode("utf-8", "replace")


def line_of(text, needle):
    for i, ln in enumerate(text.split("\n"), 1):
        if ln.strip() == needle:
            return i
    raise AssertionError("%r not in config" % needle)


def test_good_config(setup_only):
    """outpostd --check-config on the config that outpost init wrote exits 0."""
    rc, out = check_config(setup_only.conf)
    assert rc == 0, out


@pytest.mark.parametrize("section,key,value", [
    ("limits", "no_such_key", "1"),
    ("limits", "idle_timeout", "banana"),
    ("limits", "max_message_size", "12Q"),
    ("limits", "max_recipients", "-4"),
    ("server", "workers", "many"),
    ("listener submission", "tls", "sometimes"),
    ("spool", "flush", "always"),
])
def test_bad_config_names_file_and_line(setup_only, section, key, value):
    """--check-config reports a bad key or value as FILE:LINE: and exits non-zero."""
    o = setup_only
    o.edit_conf({section: {key: value}})
    text = o.conf_text()
    n = line_of(text, "%s = %s" % (key, value))
    rc, out = check_config(o.conf)
    assert rc != 0, out
    assert re.search(r"outpost\.conf:%d:" % n, out), \
        "expected 'outpost.conf:%d:' in %r" % (n, out)


def test_bad_config_refuses_to_start(setup_only):
    """outpostd refuses to start on a bad config, naming FILE:LINE."""
    o = setup_only
    o.edit_conf({"limits": {"max_errors": "lots"}})
    n = line_of(o.conf_text(), "max_errors = lots")
    rc, out = start_expect_failure(o.conf)
    assert rc != 0
    assert re.search(r"outpost\.conf:%d:" % n, out), out


def test_unknown_section(setup_only):
    """An unknown section is an error with its line number."""
    o = setup_only
    with open(o.conf, "a") as f:
        f.write("\n[nonsense]\nkey = 1\n")
    text = o.conf_text()
    rc, out = check_config(o.conf)
    assert rc != 0, out
    n = line_of(text, "[nonsense]")
    assert re.search(r"outpost\.conf:(%d|%d):" % (n, n + 1), out), out


def test_missing_cert(setup_only):
    """A missing certificate file fails start-up with a message naming the file."""
    o = setup_only
    missing = os.path.join(o.dir, "tls", "does-not-exist.crt")
    o.edit_conf({"tls": {"cert": missing}})
    rc, out = start_expect_failure(o.conf)
    assert rc != 0, out
    assert "does-not-exist.crt" in out, out


def test_second_daemon_spool_lock(make_outpost):
    """A second outpostd on the same data dir fails to start with a message about the spool lock."""
    o = make_outpost()
    text = o.conf_text()
    text = text.replace("127.0.0.1:%d" % o.port, "127.0.0.1:%d" % free_port())
    text = text.replace("127.0.0.1:%d" % o.port_tls, "127.0.0.1:%d" % free_port())
    conf2 = os.path.join(o.dir, "second.conf")
    with open(conf2, "w") as f:
        f.write(text)
    rc, out = start_expect_failure(conf2)
    assert rc != 0, out
    assert "lock" in out.lower(), out
    # The first daemon is unharmed.
    assert o.alive()
    qid = o.send_raw(simple_message("after second"))
    assert qid in o.queue_ids()


def test_sighup_keeps_serving(make_outpost):
    """After SIGHUP the daemon keeps running, open sessions survive, and new mail is accepted."""
    o = make_outpost()
    d = o.session()
    o.signal(signal.SIGHUP)
    qid = o.send_raw(simple_message("after hup"))
    assert qid in o.queue_ids()
    d.cmd("NOOP")
    d.expect(250, "2.0.0")
    d.cmd("QUIT")
    d.expect(221)
    d.close()
    o.signal(signal.SIGHUP)
    o.signal(signal.SIGHUP)
    assert o.noop_works("implicit")
    assert o.alive()


def _peer_cert(o):
    import socket
    import ssl
    ctx = ssl.create_default_context(cafile=o.ca)
    with socket.create_connection((o.host, o.port_tls), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def test_sighup_reloads_certificate(make_outpost):
    """SIGHUP loads a replaced certificate for new connections without a restart."""
    from conftest import wait_until
    o = make_outpost()
    old = _peer_cert(o)
    tls = os.path.join(o.dir, "tls")
    ext = os.path.join(o.dir, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run = lambda *a: subprocess.run(a, capture_output=True, timeout=60, check=True)
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", os.path.join(tls, "new.key"), "-subj", "/CN=localhost",
        "-out", os.path.join(tls, "new.csr"))
    run("openssl", "x509", "-req", "-in", os.path.join(tls, "new.csr"),
        "-CA", os.path.join(tls, "ca.crt"), "-CAkey", os.path.join(tls, "ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", ext,
        "-out", os.path.join(tls, "new.crt"))
    o.edit_conf({"tls": {"cert": "tls/new.crt", "key": "tls/new.key"}})
    o.signal(signal.SIGHUP)
    assert wait_until(lambda: _peer_cert(o) != old, 10, 0.2), "certificate not reloaded"
    qid = o.send_raw(simple_message("new cert"))
    assert qid in o.queue_ids()


def test_sighup_with_broken_config_keeps_running(make_outpost):
    """SIGHUP with a broken config keeps the running configuration and keeps serving."""
    o = make_outpost()
    o.edit_conf({"limits": {"idle_timeout": "soon"}})
    o.signal(signal.SIGHUP)
    assert o.noop_works()
    qid = o.send_raw(simple_message("still here"))
    assert qid in o.queue_ids()
    assert o.alive()


def test_sigterm_421_to_idle_session(make_outpost):
    """On SIGTERM an idle session gets 421 4.3.2 and the daemon exits 0."""
    o = make_outpost()
    d = o.dialog("plain")
    d.ehlo()
    o.signal(signal.SIGTERM)
    d.expect(421, "4.3.2")
    d.wait_closed()
    d.close()
    rc = o.proc.wait(timeout=10)
    assert rc == 0, o.log_text()[-2000:]
    o.proc = None   # stopped as asked; teardown still checks the log

"""Hop limit, timeouts, idle and concurrent connections, disconnects mid-DATA."""
import socket
import struct
import time

import pytest

from conftest import (RCPT, USER, Closed, Dialog, simple_message, wait_until)


def received_lines(n):
    return b"".join(b"Received: from hop%d.example.net (hop%d.example.net [192.0.2.%d])\r\n"
                    b"\tby mx.example.net with ESMTP; Mon, 1 Jan 2024 00:00:%02d +0000\r\n"
                    % (i, i, i % 250 + 1, i % 60) for i in range(n))


def send_data(o, msg):
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        d.cmd("DATA")
        d.expect(354)
        d.send(msg + b".\r\n")
        r = d.reply()
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
        return r


def test_hop_limit(outpost_module):
    """A message with 51 Received headers gets 554 5.4.6 (mail loop); 50 are accepted (default max_received=50)."""
    o = outpost_module
    before = set(o.queue_ids())
    r = send_data(o, received_lines(51) + simple_message("loop"))
    assert r.code == 554 and r.enhanced == "5.4.6", r
    assert set(o.queue_ids()) == before
    r = send_data(o, received_lines(50) + simple_message("fifty hops"))
    assert r.code == 250 and r.enhanced == "2.0.0", r


def test_received_in_body_not_counted(outpost_module):
    """'Received:' lines in the body are not headers and do not count toward the hop limit."""
    o = outpost_module
    body = b"".join(b"Received: quoted line %d\r\n" % i for i in range(60))
    r = send_data(o, simple_message("quoted", body))
    assert r.code == 250, r


@pytest.mark.outpost_conf({"limits": {"max_received": "3"}})
def test_hop_limit_configurable(outpost_setup):
    """max_received is honoured: 4 Received headers with max_received=3 get 554 5.4.6."""
    o = outpost_setup
    r = send_data(o, received_lines(4) + simple_message("four"))
    assert r.code == 554 and r.enhanced == "5.4.6", r
    r = send_data(o, received_lines(3) + simple_message("three"))
    assert r.code == 250, r


@pytest.mark.outpost_conf({"limits": {"idle_timeout": "2s"}})
def test_idle_timeout(outpost_setup):
    """An idle session gets 421 4.4.2 and is closed (idle_timeout=2s), on both ports."""
    o = outpost_setup
    with o.dialog("plain") as d:
        d.ehlo()
        r = d.expect(421, "4.4.2", timeout=20)
        d.wait_closed(timeout=10)
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(250, "2.1.0")
        r = d.expect(421, "4.4.2", timeout=20)
        d.wait_closed(timeout=10)
    assert o.noop_works()


@pytest.mark.outpost_conf({"limits": {"idle_timeout": "2s"}})
def test_stalled_tls_handshake_dropped(outpost_setup):
    """A client that connects to the implicit-TLS port and never starts the handshake is dropped."""
    o = outpost_setup
    s = socket.create_connection((o.host, o.port_tls), timeout=20)
    try:
        data = b""
        for _ in range(100):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        else:
            pytest.fail("server kept sending to a silent TLS client")
    except socket.timeout:
        pytest.fail("silent client on the TLS port still connected after 20 s")
    except ConnectionResetError:
        pass
    finally:
        s.close()


@pytest.mark.outpost_conf({"limits": {"data_timeout": "2s", "idle_timeout": "60s"}})
def test_data_timeout(outpost_setup):
    """A client that stops mid-DATA gets 421 4.4.2 and is closed (data_timeout=2s); nothing is stored."""
    o = outpost_setup
    d = o.session()
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.cmd("DATA")
    d.expect(354)
    d.send(simple_message("stall", b"half a li"))
    r = d.reply(timeout=20)
    assert r.code == 421 and r.enhanced == "4.4.2", r
    d.wait_closed(timeout=10)
    d.close()
    assert wait_until(lambda: o.tmp_files() == [], 10), o.tmp_files()
    assert o.queue_files() == []
    assert o.noop_works()


@pytest.mark.outpost_conf({"limits": {"max_connections_per_ip": "1000"}})
def test_many_idle_connections(outpost_setup):
    """200 idle connections (half of them silent on the TLS port) do not stop a new client from sending."""
    o = outpost_setup
    socks = []
    try:
        for i in range(200):
            port = o.port if i % 2 == 0 else o.port_tls
            socks.append(socket.create_connection((o.host, port), timeout=10))
        qid = o.send_raw(simple_message("among idlers"), mode="implicit")
        assert qid in o.queue_ids()
        assert o.noop_works()
        # The idle plaintext ones did get their greeting.
        s = socks[0]
        s.settimeout(10)
        assert s.recv(100).startswith(b"220 ")
    finally:
        for s in socks:
            s.close()


def hold_connections(o, n):
    """n open sessions.  The fixture's readiness probes may still be
    counted for a moment after they closed (the server notices a close
    asynchronously, slower under ASan): retry a 421 briefly."""
    held = []

    def open_one():
        try:
            return o.dialog("plain")
        except (AssertionError, OSError):
            return None
    for _ in range(n):
        d = wait_until(open_one, 10, 0.1)
        assert d is not None, "could not open a held connection"
        held.append(d)
    return held


@pytest.mark.outpost_conf({"limits": {"max_connections_per_ip": "3"}})
def test_connections_per_ip(outpost_setup):
    """With max_connections_per_ip=3, a 4th concurrent connection gets 421 4.7.0 and is closed."""
    o = outpost_setup
    held = hold_connections(o, 3)
    try:
        d = Dialog(o.host, o.port, ca=o.ca)
        d.expect(421, "4.7.0")
        d.wait_closed()
        d.close()
        held.pop().close()

        def try_again():
            d = Dialog(o.host, o.port, ca=o.ca)
            try:
                r = d.reply()
                return r.code == 220
            except Closed:
                return False
            finally:
                d.close()
        assert wait_until(try_again, 10, 0.2), "no slot freed after a client left"
        # The held sessions still work.
        held[0].cmd("NOOP")
        held[0].expect(250, "2.0.0")
    finally:
        for h in held:
            h.close()


@pytest.mark.outpost_conf({"limits": {"max_connections": "3",
                                      "max_connections_per_ip": "100"}})
def test_max_connections(outpost_setup):
    """With max_connections=3, a 4th connection gets 421 4.3.2."""
    o = outpost_setup
    held = hold_connections(o, 3)
    try:
        d = Dialog(o.host, o.port, ca=o.ca)
        d.expect(421, "4.3.2")
        d.wait_closed()
        d.close()
    finally:
        for h in held:
            h.close()

    def noop_after_release():
        # the server notices the closes asynchronously: a 421 until then
        try:
            return o.noop_works()
        except (AssertionError, OSError):
            return False
    assert wait_until(noop_after_release, 10, 0.2)


@pytest.mark.parametrize("how", ["close", "reset", "close-tls"])
def test_disconnect_mid_data(outpost_setup, how):
    """A client that disconnects mid-DATA leaves nothing in queue/ or tmp/."""
    o = outpost_setup
    d = o.session()
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.cmd("DATA")
    d.expect(354)
    d.send(simple_message("cut", b"line\r\n" * 20000))   # ~120 KB, no dot
    if how == "reset":
        raw = d.sock
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()
    elif how == "close-tls":
        d.sock.shutdown(socket.SHUT_RDWR)
        d.close()
    else:
        d.close()
    assert wait_until(lambda: o.tmp_files() == [], 10), o.tmp_files()
    assert o.queue_files() == []
    assert o.noop_works()
    # and the next complete message is stored normally
    qid = o.send_raw(simple_message("after cut"))
    assert o.queue_ids() == [qid]


def test_disconnect_mid_bdat(outpost_setup):
    """A client that disconnects inside a BDAT chunk leaves nothing in the spool."""
    o = outpost_setup
    d = o.session()
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.send(b"BDAT 100000 LAST\r\n" + simple_message("bdat cut", b"x" * 50 + b"\r\n"))
    time.sleep(0.2)
    d.close()
    assert wait_until(lambda: o.tmp_files() == [], 10), o.tmp_files()
    assert o.queue_files() == []
    assert o.noop_works()

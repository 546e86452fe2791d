"""Durability: kill -9 loses no acknowledged message; fsync order; spool faults."""
import collections
import os
import re
import shutil
import threading
import time

import pytest

from conftest import (RCPT, USER, Closed, send_until_stopped, simple_message,
                      wait_until)


def sender_loop(o, acked, stop, errors):
    """Sends messages until stop is set or the daemon dies; appends every
    queue id that got 250 to acked."""
    def send_one(s):
        s.sendmail(USER, [RCPT], simple_message("durable", b"x" * 500 + b"\r\n"))
        acked.append(s.queue_id())
    send_until_stopped(o, stop, errors, send_one)


def test_kill9_loses_nothing(make_outpost):
    """kill -9 mid-stream, restart: every message that got 250 is in the spool exactly once, tmp/ is empty."""
    o = make_outpost()
    acked, errors = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=sender_loop, args=(o, acked, stop, errors))
               for _ in range(3)]
    for t in threads:
        t.start()
    try:
        # Kill once a few messages are through (bounded: at most 10 s).
        wait_until(lambda: len(acked) >= 20, timeout=10)
        time.sleep(0.3)
        n_before_kill = len(acked)
        o.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "sender thread hung"
    assert n_before_kill > 0, "no message acknowledged before the kill: %r" % errors
    got = list(acked)
    o.start()
    ids = o.queue_ids()
    counts = collections.Counter(ids)
    missing = [q for q in got if counts[q] == 0]
    assert not missing, "acknowledged but lost after kill -9: %r" % missing
    dup = [q for q, c in counts.items() if c > 1]
    assert not dup, "stored more than once: %r" % dup
    assert len(set(got)) == len(got), "a queue id was acknowledged twice"
    assert o.tmp_files() == [], "tmp/ not cleaned by recovery: %r" % o.tmp_files()
    listing = o.queue_list()
    for q in got:
        assert listing.count(q) == 1, "queue list shows %s %d times" % (q, listing.count(q))
    # Every stored message is whole: ends with the body we sent.
    for q in set(ids):
        _, msg = o.stored(q)
        assert msg.endswith(b"\r\n\r\n" + b"x" * 500 + b"\r\n"), q
    # And the restarted daemon accepts mail.
    qid = o.send_raw(simple_message("after restart"))
    assert qid in o.queue_ids()
    assert qid not in got


def test_restart_keeps_queue(make_outpost):
    """Messages queued before a clean restart are still listed after it."""
    o = make_outpost()
    q1 = o.send_raw(simple_message("one"))
    o.stop()
    o.start()
    q2 = o.send_raw(simple_message("two"))
    assert sorted(o.queue_ids()) == sorted([q1, q2])
    assert q1 < q2, "queue ids not increasing across restarts"


def test_recovery_removes_tmp(make_outpost):
    """A half-written file left in tmp/ is discarded at start-up and never shows in the queue."""
    o = make_outpost(start=False)
    tmpdir = os.path.join(o.spool, "tmp")
    os.makedirs(tmpdir, exist_ok=True)
    with open(os.path.join(tmpdir, "0000000000000000"), "wb") as f:
        f.write(b"partial envelope")
    o.start()
    assert o.tmp_files() == []
    assert o.queue_ids() == []


# --------------------------------------------------------------------------
# fsync order, through strace

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_UNFIN = re.compile(r"^(\w+)\((.*)\s+<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(-?\d+|\?)")


def parse_strace(path):
    """Events (idx, kind, pid, name, args, ret); kind is 'call' for a
    complete line, 'start'/'end' for split ones.  Order = trace order."""
    events, pending = [], {}
    with open(path, errors="replace") as f:
        for idx, line in enumerate(f):
            m = _LINE.match(line.rstrip("\n"))
            if not m:
                continue
            pid, rest = int(m.group(1)), m.group(2)
            u = _UNFIN.match(rest)
            if u:
                pending[pid] = (u.group(1), u.group(2))
                events.append((idx, "start", pid, u.group(1), u.group(2), None))
                continue
            r = _RESUMED.match(rest)
            if r:
                name, args = pending.pop(pid, (r.group(1), ""))
                ret = r.group(3)
                events.append((idx, "end", pid, name, args + r.group(2),
                               int(ret) if ret != "?" else None))
                continue
            c = _CALL.match(rest)
            if c:
                ret = c.group(3)
                events.append((idx, "call", pid, c.group(1), c.group(2),
                               int(ret) if ret != "?" else None))
    return events


def _first_int(args):
    m = re.match(r"\s*(-?\d+)", args)
    return int(m.group(1)) if m else None


def _strings(args):
    return re.findall(r'"((?:[^"\\]|\\.)*)"', args)


def check_fsync_order(events, qid, client_port, flush="file"):
    """flush "file": open < fdatasync of the file < rename < fsync of
    queue/ < reply.  "filesystem": open < rename < syncfs < reply, and no
    fdatasync of the file (the syncfs covers it)."""
    fdpath = {}
    file_fds = set()
    t_open = t_sync = t_rename = t_dirsync = t_reply = None
    client_fd = None
    for idx, kind, pid, name, args, ret in events:
        done = kind in ("call", "end")
        started = kind in ("call", "start")
        if name == "openat" and done and ret is not None and ret >= 0:
            strs = _strings(args)
            if strs:
                p = strs[0]
                base = _first_int(args)
                if not p.startswith("/") and base in fdpath:
                    p = fdpath[base].rstrip("/") + "/" + p
                fdpath[ret] = p
                if qid in p and t_rename is None:
                    file_fds.add(ret)
                    t_open = t_open or idx
        elif name in ("accept", "accept4") and done and ret is not None and ret >= 0:
            if "htons(%d)" % client_port in args:
                client_fd = ret
        elif name in ("fdatasync", "fsync") and done and ret == 0:
            fd = _first_int(args)
            if t_rename is None and fd in file_fds:
                t_sync = idx
            elif t_rename is not None and t_dirsync is None:
                p = fdpath.get(fd, "")
                if p.rstrip("/").endswith("queue"):
                    t_dirsync = idx
        elif name == "syncfs" and done and ret == 0:
            if t_rename is not None and t_dirsync is None:
                t_dirsync = idx
        elif name in ("rename", "renameat", "renameat2") and t_rename is None:
            if qid in args and done and ret == 0:
                t_rename = idx
        elif name in ("write", "writev", "sendto", "sendmsg") and started:
            if (t_rename is not None and client_fd is not None
                    and _first_int(args) == client_fd and t_reply is None):
                t_reply = idx
    assert t_open is not None, "no openat of a file named after %s" % qid
    assert t_rename is not None, "no rename of %s" % qid
    assert client_fd is not None, "accept of the client connection not found"
    assert t_reply is not None, "no write to the client after the rename"
    if flush == "filesystem":
        assert t_sync is None, "message file fdatasync'd with flush = filesystem"
        assert t_dirsync is not None, "no syncfs after the rename"
        assert t_open < t_rename < t_dirsync < t_reply, \
            (t_open, t_rename, t_dirsync, t_reply)
        return
    assert t_sync is not None, "message file not fdatasync'd/fsync'd before its rename"
    assert t_dirsync is not None, "queue directory not fsync'd after the rename"
    assert t_open < t_sync < t_rename < t_dirsync < t_reply, \
        (t_open, t_sync, t_rename, t_dirsync, t_reply)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
@pytest.mark.parametrize("flush", ["file", "filesystem"])
def test_fsync_before_250(make_outpost, flush):
    """Before 250 is written: [spool] flush = file fdatasyncs the message file before its rename into queue/ and fsyncs queue/ after it; flush = filesystem renames, then syncfs() covers file and rename."""
    # LeakSanitizer cannot run under ptrace; the rest of ASan can.
    asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    o = make_outpost(overrides={"spool": {"flush": flush}}, start=False,
                     env={"ASAN_OPTIONS": asan})
    trace = os.path.join(o.dir, "strace.out")
    o.wrapper = ["strace", "-f", "-qq", "-s", "256", "-o", trace, "-e",
                 "trace=openat,write,writev,fdatasync,fsync,syncfs,rename,"
                 "renameat,renameat2,sendto,sendmsg,accept,accept4"]
    o.start()
    d = o.session()
    d.cmd("MAIL FROM:<%s>" % USER)
    d.expect(250, "2.1.0")
    d.cmd("RCPT TO:<%s>" % RCPT)
    d.expect(250, "2.1.5")
    d.cmd("DATA")
    d.expect(354)
    d.send(simple_message("traced") + b".\r\n")
    r = d.expect(250, "2.0.0")
    qid = r.text.split()[-1]
    d.cmd("QUIT")
    d.expect(221)
    d.close()
    o.stop()
    events = parse_strace(trace)
    assert events, "empty strace output"
    check_fsync_order(events, qid, d.local_port, flush)


# --------------------------------------------------------------------------
# Fault injection seam

def try_send(o, lines=300):
    """Returns the reply that decided the transaction (DATA's or the dot's)."""
    d = o.session()
    try:
        d.cmd("MAIL FROM:<%s>" % USER)
        r = d.reply()
        if r.code != 250:
            return r
        d.cmd("RCPT TO:<%s>" % RCPT)
        d.expect(250, "2.1.5")
        d.cmd("DATA")
        r = d.reply()
        if r.code != 354:
            return r
        d.send(simple_message("fault", (b"y" * 76 + b"\r\n") * lines) + b".\r\n")
        r = d.reply(timeout=20)
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
        return r
    finally:
        d.close()


@pytest.mark.parametrize("flush,fault,code,enh", [
    ("file", "fdatasync:EIO", 451, "4.3.0"),
    ("file", "write:EIO", 451, "4.3.0"),
    ("file", "write:ENOSPC", 452, "4.3.1"),
    ("file", "fsync:EIO", 451, "4.3.0"),
    ("file", "rename:EIO", 451, "4.3.0"),
    ("filesystem", "syncfs:EIO", 451, "4.3.0"),
    ("filesystem", "write:ENOSPC", 452, "4.3.1"),
    ("filesystem", "rename:EIO", 451, "4.3.0"),
])
def test_spool_faults(make_outpost, flush, fault, code, enh):
    """A failing disk (EIO/ENOSPC on write, fdatasync, fsync, syncfs or rename) gives 451 4.3.0 / 452 4.3.1, never 250, under every [spool] flush mode; nothing queued; service continues."""
    o = make_outpost(overrides={"spool": {"flush": flush}},
                     env={"OUTPOST_SPOOL_FAULTS": fault})
    for _ in range(2):
        r = try_send(o)
        assert r.code == code and r.enhanced == enh, "%s: %r" % (fault, r)
    assert o.queue_files() == [], o.queue_files()
    assert wait_until(lambda: o.tmp_files() == [], 10), o.tmp_files()
    assert o.alive()
    assert o.noop_works("implicit")


@pytest.mark.parametrize("fault,code,enh", [
    ("write:ENOSPC", 452, "4.3.1"),
    ("write:EIO", 451, "4.3.0"),
])
def test_spool_faults_large_signed_message(make_outpost, fault, code, enh):
    """A DKIM-signed message large enough to reach the disk during DATA (230 KiB) keeps the disk's reply when the write fails: 452 4.3.1 for a full disk, 451 4.3.0 for EIO; nothing queued."""
    o = make_outpost(env={"OUTPOST_SPOOL_FAULTS": fault})
    r = try_send(o, lines=3000)
    assert r.code == code and r.enhanced == enh, "%s: %r" % (fault, r)
    assert o.queue_files() == [], o.queue_files()
    assert wait_until(lambda: o.tmp_files() == [], 10), o.tmp_files()
    assert o.noop_works()


def test_enospc_after_some_writes(make_outpost):
    """ENOSPC that starts mid-stream (write:ENOSPC:2) fails later messages with 452 4.3.1, not the daemon."""
    o = make_outpost(env={"OUTPOST_SPOOL_FAULTS": "write:ENOSPC:2"})
    codes = []
    for _ in range(4):
        r = try_send(o)
        codes.append(r.code)
        assert r.code in (250, 452), r
    assert 452 in codes, codes
    assert len(o.queue_ids()) == codes.count(250)
    assert o.noop_works()


@pytest.mark.outpost_conf({"spool": {"min_free_space": "100000G"}})
def test_min_free_space(outpost_setup):
    """Below min_free_space, MAIL gets 452 4.3.1 and the session stays usable."""
    o = outpost_setup
    with o.session() as d:
        d.cmd("MAIL FROM:<%s>" % USER)
        d.expect(452, "4.3.1")
        d.cmd("NOOP")
        d.expect(250, "2.0.0")
    assert o.queue_files() == []

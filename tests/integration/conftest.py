"""
Integration test harness: start the real outpostd in a temporary directory
on free loopback ports and talk to it with real clients.

The binaries come from $OUTPOST_BUILD (absolute path of the build dir,
default <repo>/build).

Fixtures
  outpost_setup   function scope: a fresh `outpost init` setup, user
                  alice@example.test / "correct horse", outpostd running.
                  Per-test config overrides with
                    @pytest.mark.outpost_conf({"limits": {"max_recipients": "5"}})
                  and extra daemon environment with
                    @pytest.mark.outpost_env({"OUTPOST_SPOOL_FAULTS": "fdatasync:EIO"})
  outpost_module  module scope, for tests that do not interfere; overrides
                  come from the module variable OUTPOST_OVERRIDES.
  make_outpost    factory: make_outpost(overrides=None, env=None,
                  wrapper=None, start=True) -> Outpost (cleaned up at the end
                  of the test).

Teardown sends SIGTERM, waits 10 s, then SIGKILL, and fails the test when
the daemon died of a signal we did not send, exited non-zero after TERM,
needed the KILL, or logged an AddressSanitizer / UBSan report or "fatal".

Every wait in here is bounded in count and time.  Loopback only.
"""
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("OUTPOST_BUILD") or os.path.join(REPO, "build")
OUTPOSTD = os.path.join(BUILD, "outpostd")
OUTPOST = os.path.join(BUILD, "outpost")

USER = "alice@example.test"
PASSWORD = "correct horse"
RCPT = "bob@example.org"

# Queue ids: 16 characters of Crockford base32 (no I L O U).
QID_RE = r"[0-9A-HJKMNP-TV-Z]{16}"
OK_QID = re.compile(r"^2\.0\.0 OK (" + QID_RE + r")$")

# Base values written into every test config (cheap argon2 so AUTH is fast).
# [delivery] dns points at a closed loopback port: the delivery engine then
# defers every message at once (DNS refused) and never looks up real
# domains; delivery tests (t_40_*) point it at their own DNS server.
BASE_OVERRIDES = {
    "accounts": {"argon2_opslimit": "1", "argon2_memlimit": "8K"},
    "delivery": {"dns": "127.0.0.1:9"},
    # no reply delay on failed AUTH, and a throttle far above what the
    # suite's deliberate failures add up to (t_40_security tests both)
    "limits": {"auth_failure_delay": "0", "auth_failures": "1000"},
}

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
REPLY_TIMEOUT = 10.0


def is_asan_build():
    """True when outpostd was built with AddressSanitizer (RSS checks are
    meaningless there: freed memory sits in ASan's quarantine)."""
    try:
        with open(OUTPOSTD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def free_port():
    """A free loopback TCP port (bind port 0, read it back, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout=10.0, interval=0.05):
    """Polls pred() until it returns a true value (returned) or the time is
    up (returns the last value).  Bounded in time and count."""
    deadline = time.monotonic() + timeout
    n = int(timeout / interval) + 2
    val = None
    for _ in range(n):
        val = pred()
        if val:
            return val
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    return val


# --------------------------------------------------------------------------
# outpost.conf editing

def conf_set(text, section, key, value):
    """Returns text with `key = value` set in [section]: an existing active
    `key = ...` line in that section is replaced, otherwise the line is
    inserted right after the section header; a missing section is appended.
    Commented-out defaults ("# key = ...") are left alone."""
    lines = text.split("\n")
    header = "[" + section + "]"
    start = None
    for i, ln in enumerate(lines):
        if ln.strip() == header:
            start = i
            break
    newline = "%s = %s" % (key, value)
    if start is None:
        if lines and lines[-1] != "":
            lines.append("")
        lines += [header, newline, ""]
        return "\n".join(lines)
    end = len(lines)
    for j in range(start + 1, len(lines)):
        if lines[j].strip().startswith("["):
            end = j
            break
    keyre = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for j in range(start + 1, end):
        if keyre.match(lines[j]):
            lines[j] = newline
            return "\n".join(lines)
    lines.insert(start + 1, newline)
    return "\n".join(lines)


def conf_apply(text, overrides):
    for section, kv in (overrides or {}).items():
        for k, v in kv.items():
            text = conf_set(text, section, k, v)
    return text


def merge_overrides(*dicts):
    out = {}
    for d in dicts:
        for section, kv in (d or {}).items():
            out.setdefault(section, {}).update(kv)
    return out


# --------------------------------------------------------------------------
# Raw dialogue

class Closed(Exception):
    pass


class Reply:
    def __init__(self, code, lines, raw):
        self.code = code          # int
        self.lines = lines        # text after "NNN-" / "NNN " of each line
        self.raw = raw            # bytes of the whole reply

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enhanced(self):
        m = re.match(r"^(\d\.\d{1,3}\.\d{1,3})(?:\s|$)", self.lines[-1])
        return m.group(1) if m else None

    def __repr__(self):
        return "Reply(%r)" % self.raw


class Dialog:
    """An SMTP session over a raw socket, plain or TLS, that sends exact
    bytes and reads whole (possibly multi-line) replies with a timeout."""

    def __init__(self, host, port, tls=False, ca=None, timeout=REPLY_TIMEOUT,
                 server_hostname="localhost"):
        self.host, self.port, self.ca = host, port, ca
        self.timeout = timeout
        self.server_hostname = server_hostname
        self.buf = b""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.local_port = self.sock.getsockname()[1]
        self.tls = False
        if tls:
            self._wrap()

    def context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=self.ca)
        return ctx

    def _wrap(self):
        assert self.buf == b"", "plaintext left unread before TLS: %r" % self.buf
        self.sock = self.context().wrap_socket(
            self.sock, server_hostname=self.server_hostname)
        self.tls = True

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete reply in time; have %r" % self.buf)
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError):
            chunk = b""
        if not chunk:
            raise Closed("connection closed; unread %r" % self.buf)
        self.buf += chunk

    def readline(self, deadline):
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > 1 << 20:
                raise AssertionError("reply line too long: %r" % self.buf[:200])
            self._fill(deadline)
        raise AssertionError("readline: too many reads")

    def reply(self, timeout=None):
        """Reads one full reply.  Raises Closed on EOF, socket.timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        lines, raw, code = [], b"", None
        for _ in range(1000):
            line = self.readline(deadline)
            raw += line + b"\r\n"
            m = re.match(rb"^(\d{3})([ -])(.*)$", line)
            assert m, "malformed reply line %r (so far %r)" % (line, raw)
            c = int(m.group(1))
            assert code is None or c == code, "code changed in reply %r" % raw
            code = c
            lines.append(m.group(3).decode("utf-8", "replace"))
            if m.group(2) == b" ":
                return Reply(code, lines, raw)
        raise AssertionError("reply with too many lines")

    def expect(self, code, enhanced=None, text=None, timeout=None):
        r = self.reply(timeout)
        assert r.code == code, "expected %s, got %r" % (code, r.raw)
        if enhanced is not None:
            assert r.enhanced == enhanced, \
                "expected enhanced code %s, got %r" % (enhanced, r.raw)
        if text is not None:
            assert text.lower() in r.text.lower(), \
                "expected %r in %r" % (text, r.raw)
        return r

    def ehlo(self, name="client.example.test"):
        self.cmd("EHLO " + name)
        r = self.expect(250)
        return [ln.upper() for ln in r.lines[1:]]

    def starttls(self):
        self.cmd("STARTTLS")
        self.expect(220, "2.0.0")
        self._wrap()

    def auth_plain(self, user=USER, password=PASSWORD, authzid=""):
        tok = base64.b64encode(("%s\0%s\0%s" % (authzid, user, password))
                               .encode()).decode()
        self.cmd("AUTH PLAIN " + tok)
        return self.reply()

    def login(self):
        r = self.auth_plain()
        assert r.code == 235 and r.enhanced == "2.7.0", r
        return r

    def wait_closed(self, timeout=None):
        """Reads until EOF; returns the bytes received before it.  Fails
        if the peer keeps the connection open past the timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        data = self.buf
        self.buf = b""
        for _ in range(100000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("connection still open; got %r" % data)
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError,
                    ConnectionResetError, BrokenPipeError):
                return data
            except ssl.SSLError:
                return data
            except socket.timeout:
                raise AssertionError("connection still open; got %r" % data)
            if not chunk:
                return data
            data += chunk
        raise AssertionError("wait_closed: too many reads")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------------
# smtplib that remembers the reply to DATA

class _RecordData:
    last_data_reply = None

    def data(self, msg):
        code, resp = super().data(msg)
        self.last_data_reply = (code, resp.decode("utf-8", "replace")
                                if isinstance(resp, bytes) else resp)
        return code, resp

    def queue_id(self):
        code, resp = self.last_data_reply
        assert code == 250, self.last_data_reply
        m = OK_QID.match(resp)
        assert m, "reply to DATA is not '250 2.0.0 OK <qid>': %r" % (resp,)
        return m.group(1)


class RecSMTP(_RecordData, smtplib.SMTP):
    pass


class RecSMTP_SSL(_RecordData, smtplib.SMTP_SSL):
    pass


# --------------------------------------------------------------------------
# The daemon

def run_cli(conf, *args, input=None, timeout=30):
    cmd = [OUTPOST]
    if conf:
        cmd += ["-c", conf]
    cmd += list(args)
    return subprocess.run(cmd, input=input, capture_output=True,
                          timeout=timeout)


def outpost_init(dirpath, p1, p2):
    r = subprocess.run(
        [OUTPOST, "init", dirpath, "--hostname", "localhost",
         "--domain", "example.test",
         "--submission", "127.0.0.1:%d" % p1,
         "--submissions", "127.0.0.1:%d" % p2],
        capture_output=True, timeout=60)
    assert r.returncode == 0, "outpost init failed: %r %r" % (r.stdout, r.stderr)
    return r


def split_spool_file(data):
    """A spool file is an envelope (text ending with a line ".") followed
    by the message bytes.  Returns (envelope, message)."""
    cands = []
    for sep in (b"\n.\n", b"\r\n.\r\n"):
        i = data.find(sep)
        if i >= 0:
            cands.append((i, sep))
    if data.startswith(b".\n"):
        return b"", data[2:]
    assert cands, "no envelope terminator in spool file: %r" % data[:300]
    i, sep = min(cands)
    return data[:i + len(sep)], data[i + len(sep):]


class Outpost:
    """One outpost setup (temp dir) and its running daemon."""

    def __init__(self, overrides=None, env=None, wrapper=None, basedir=None):
        if not (os.access(OUTPOSTD, os.X_OK) and os.access(OUTPOST, os.X_OK)):
            pytest.fail("binaries not built: %s, %s (run make)" % (OUTPOSTD, OUTPOST))
        self.dir = tempfile.mkdtemp(prefix="outpost-it-", dir=basedir)
        self.host = "127.0.0.1"
        self.port = free_port()        # STARTTLS (587 style)
        self.port_tls = free_port()    # implicit TLS (465 style)
        while self.port_tls == self.port:
            self.port_tls = free_port()
        self.port_web = free_port()    # account page (HTTPS)
        while self.port_web in (self.port, self.port_tls):
            self.port_web = free_port()
        self.conf = os.path.join(self.dir, "outpost.conf")
        self.ca = os.path.join(self.dir, "tls", "ca.crt")
        self.log = os.path.join(self.dir, "outpostd.log")
        self.spool = os.path.join(self.dir, "data", "spool")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.wrapper = list(wrapper or [])
        self.proc = None
        self.pid = None                # outpostd's pid (not the wrapper's)
        self.sent_signals = set()
        self.problems = []
        outpost_init(self.dir, self.port, self.port_tls)
        self.overrides = merge_overrides(
            BASE_OVERRIDES,
            {"account_page": {"listen": "127.0.0.1:%d" % self.port_web}},
            overrides)
        self.edit_conf(self.overrides)
        r = run_cli(self.conf, "user", "add", USER,
                    input=(PASSWORD + "\n").encode())
        assert r.returncode == 0, "user add failed: %r %r" % (r.stdout, r.stderr)

    # -- config
    def conf_text(self):
        with open(self.conf) as f:
            return f.read()

    def edit_conf(self, overrides):
        text = conf_apply(self.conf_text(), overrides)
        with open(self.conf, "w") as f:
            f.write(text)

    # -- process
    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                self.wrapper + [OUTPOSTD, "-c", self.conf],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                env=self.env, cwd=self.dir)
        finally:
            logf.close()
        self.sent_signals = set()
        self.pid = self.proc.pid
        if wait:
            self.wait_ready()
        return self

    def _find_child(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid,
                                                     self.proc.pid)) as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout * (3 if self.wrapper else 1)
        pending = {self.port, self.port_tls}
        for _ in range(10000):
            if self.proc.poll() is not None:
                pytest.fail("outpostd exited (status %s) during start-up:\n%s"
                            % (self.proc.returncode, self.log_text()[-3000:]))
            for p in list(pending):
                try:
                    socket.create_connection((self.host, p), timeout=1).close()
                    pending.discard(p)
                except OSError:
                    pass
            if not pending:
                break
            if time.monotonic() > deadline:
                pytest.fail("outpostd did not listen on %s within %ss:\n%s"
                            % (sorted(pending), timeout, self.log_text()[-3000:]))
            time.sleep(0.05)
        if self.wrapper:
            child = wait_until(self._find_child, timeout=5)
            assert child, "cannot find outpostd under %s" % self.wrapper
            self.pid = child
        return self

    def signal(self, sig):
        self.sent_signals.add(sig)
        os.kill(self.pid, sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """kill -9 and reap (a durability test's crash)."""
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.problems.append("outpostd did not die after SIGKILL")
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def restart(self):
        """kill -9, then start again on the same directory."""
        self.kill9()
        return self.start()

    def stop(self):
        """SIGTERM, wait, SIGKILL; records anything abnormal in problems."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            rc = None
            try:
                self.signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                rc = self.proc.wait(timeout=STOP_TIMEOUT * (3 if self.wrapper else 1))
            except subprocess.TimeoutExpired:
                self.problems.append("outpostd did not exit within %ss of SIGTERM"
                                     % STOP_TIMEOUT)
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
                rc = None
            if rc is not None and rc != 0:
                if rc < 0 and -rc in self.sent_signals and -rc != signal.SIGTERM:
                    pass
                else:
                    self.problems.append("outpostd exit status %s after SIGTERM" % rc)
        else:
            rc = self.proc.returncode
            if rc < 0 and -rc in self.sent_signals:
                pass
            elif rc != 0:
                self.problems.append("outpostd died on its own, status %s" % rc)
            else:
                self.problems.append("outpostd exited on its own (status 0)")
        self.proc = None

    def check_log(self):
        text = self.log_text()
        for pat in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            if pat in text:
                self.problems.append("log contains %r" % pat)
        if re.search(r"(?i)\bfatal\b", text):
            self.problems.append("log contains 'fatal'")

    def cleanup(self):
        """Stops the daemon and returns a list of problems (empty = fine)."""
        try:
            self.stop()
        finally:
            self.check_log()
        return self.problems

    # -- files
    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _files(self, sub):
        root = os.path.join(self.spool, sub)
        out = []
        for dirpath, _dirs, files in os.walk(root):
            for fn in files:
                out.append(os.path.relpath(os.path.join(dirpath, fn), root))
        return sorted(out)

    def queue_files(self):
        """Files under SPOOL/queue (relative paths)."""
        return self._files("queue")

    def tmp_files(self):
        return self._files("tmp")

    def queue_ids(self):
        """Queue ids found in the file names under SPOOL/queue, with
        repeats (a message stored twice shows twice)."""
        ids = []
        for f in self.queue_files():
            ids += re.findall(QID_RE, os.path.basename(f))
        return ids

    def queue_path(self, qid):
        hits = [f for f in self.queue_files() if qid in os.path.basename(f)]
        assert len(hits) == 1, "queue id %s: files %r" % (qid, hits)
        return os.path.join(self.spool, "queue", hits[0])

    def stored(self, qid):
        """(envelope bytes, message bytes) of a queued message."""
        with open(self.queue_path(qid), "rb") as f:
            return split_spool_file(f.read())

    def cli(self, *args, input=None):
        return run_cli(self.conf, *args, input=input)

    def queue_list(self):
        r = self.cli("queue", "list")
        assert r.returncode == 0, "queue list: %r %r" % (r.stdout, r.stderr)
        return r.stdout.decode("utf-8", "replace")

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return 0

    # -- clients
    def dialog(self, mode="starttls", timeout=REPLY_TIMEOUT):
        """mode: "plain" (port 587 style, no TLS yet), "starttls" (587 +
        STARTTLS done, no EHLO yet), "implicit" (465, TLS)."""
        if mode == "implicit":
            d = Dialog(self.host, self.port_tls, tls=True, ca=self.ca,
                       timeout=timeout)
            d.expect(220)
            return d
        d = Dialog(self.host, self.port, tls=False, ca=self.ca, timeout=timeout)
        d.expect(220)
        if mode == "starttls":
            d.ehlo()
            d.starttls()
        return d

    def session(self, mode="implicit"):
        """An authenticated session right after EHLO + AUTH PLAIN."""
        d = self.dialog(mode)
        d.ehlo()
        d.login()
        return d

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        return ctx

    def smtp_ssl(self, login=True, timeout=REPLY_TIMEOUT):
        s = RecSMTP_SSL(self.host, self.port_tls, timeout=timeout,
                        context=self.ssl_context(),
                        local_hostname="client.example.test")
        if login:
            s.login(USER, PASSWORD)
        return s

    def smtp_starttls(self, login=True, timeout=REPLY_TIMEOUT):
        s = RecSMTP(self.host, self.port, timeout=timeout,
                    local_hostname="client.example.test")
        s._host = "localhost"   # the name to verify in starttls()
        s.starttls(context=self.ssl_context())
        if login:
            s.login(USER, PASSWORD)
        return s

    def send_raw(self, msg, rcpts=(RCPT,), mode="implicit"):
        """Submits msg (bytes, CRLF) with smtplib; returns the queue id."""
        s = self.smtp_ssl() if mode == "implicit" else self.smtp_starttls()
        try:
            s.sendmail(USER, list(rcpts), msg)
            return s.queue_id()
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()

    def noop_works(self, mode="plain"):
        d = self.dialog(mode)
        try:
            d.cmd("NOOP")
            d.expect(250, "2.0.0")
            d.cmd("QUIT")
            d.expect(221)
        finally:
            d.close()
        return True


def send_until_stopped(o, stop, errors, send_one, per_conn=20,
                       max_conns=2000):
    """Opens implicit-TLS sessions to o one after another and calls
    send_one(session) per_conn times in each, until stop is set, max_conns
    sessions are done or the daemon dies (the error goes to errors).
    For load that a test kills the daemon under."""
    for _ in range(max_conns):
        if stop.is_set():
            return
        try:
            s = o.smtp_ssl(timeout=10)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            errors.append(repr(e))
            return
        try:
            for _ in range(per_conn):
                if stop.is_set():
                    return
                send_one(s)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            errors.append(repr(e))
            return
        finally:
            try:
                s.close()
            except OSError:
                pass


def simple_message(subject="test", body=b"Hello.\r\n", extra=b""):
    return (b"From: Alice <alice@example.test>\r\n"
            b"To: Bob <bob@example.org>\r\n"
            b"Subject: " + subject.encode() + b"\r\n"
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <" + os.urandom(6).hex().encode() + b"@example.test>\r\n"
            + extra + b"\r\n" + body)


# --------------------------------------------------------------------------
# Fixtures

@pytest.fixture
def make_outpost(tmp_path_factory):
    made = []

    def make(overrides=None, env=None, wrapper=None, start=True):
        o = Outpost(overrides=overrides, env=env, wrapper=wrapper,
                    basedir=str(tmp_path_factory.getbasetemp()))
        made.append(o)
        if start:
            o.start()
        return o

    yield make
    problems = []
    for o in made:
        p = o.cleanup()
        if p:
            problems.append("%s: %s\n--- log tail ---\n%s"
                            % (o.dir, "; ".join(p), o.log_text()[-4000:]))
    for o in made:
        if not problems:
            shutil.rmtree(o.dir, ignore_errors=True)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def outpost_setup(request, make_outpost):
    m = request.node.get_closest_marker("outpost_conf")
    e = request.node.get_closest_marker("outpost_env")
    return make_outpost(overrides=m.args[0] if m else None,
                        env=e.args[0] if e else None)


@pytest.fixture(scope="module")
def outpost_module(request, tmp_path_factory):
    o = Outpost(overrides=getattr(request.module, "OUTPOST_OVERRIDES", None),
                basedir=str(tmp_path_factory.getbasetemp()))
    o.start()
    yield o
    p = o.cleanup()
    if p:
        pytest.fail("%s: %s\n--- log tail ---\n%s"
                    % (o.dir, "; ".join(p), o.log_text()[-4000:]), pytrace=False)
    shutil.rmtree(o.dir, ignore_errors=True)

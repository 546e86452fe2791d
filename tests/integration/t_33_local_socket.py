"""The [local] unix socket: `outpost sendmail` for callers without an
accounts file (user crontabs, PHP as www-data).  The daemon knows the
caller by SO_PEERCRED: a local user sends as LOGIN@domain only (envelope
and From:), root as anyone, the per-user quota applies, a uid without a
name is refused, no STARTTLS or AUTH there; the socket is absent when
[local] is off; while the daemon is down the message waits in the
outbox and `outpost outbox flush` hands it to the socket later."""
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

from conftest import OUTPOST, wait_until

LUSER = "outpost-t33"
DOMAIN = "example.test"          # the setups' [server] domain
NOBODY_UID = 54321               # a uid without a passwd entry
EX_OK, EX_UNAVAILABLE, EX_CONFIG = 0, 69, 78
RUNUSER = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or RUNUSER is None,
                                reason="needs root (creates a user) and "
                                "runuser")


@pytest.fixture(scope="module")
def luser():
    """A non-root user (made here when missing, removed afterwards)."""
    made = False
    try:
        pwd.getpwnam(LUSER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s",
                        "/usr/sbin/nologin", LUSER], check=True,
                       capture_output=True)
        made = True
    yield pwd.getpwnam(LUSER)
    if made:
        subprocess.run(["userdel", LUSER], capture_output=True)
    assert not any(u.pw_uid == NOBODY_UID for u in pwd.getpwall())


@pytest.fixture
def world(luser):
    """A directory everyone can reach: the socket's parent, a readable
    system configuration and the user's HOME live here."""
    d = tempfile.mkdtemp(prefix="op33-", dir="/tmp")
    os.chmod(d, 0o755)
    home = os.path.join(d, "home")
    os.mkdir(home, 0o700)
    os.chown(home, luser.pw_uid, luser.pw_gid)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def sock_path(world):
    return os.path.join(world, "run", "outpost.sock")


def client_conf(world, socket_on=True):
    """The system configuration as the client reads it (it only needs
    [server] domain and [local])."""
    p = os.path.join(world, "outpost.conf")
    with open(p, "w") as f:
        f.write("[server]\ndomain = %s\n" % DOMAIN)
        if socket_on:
            f.write("[local]\nsocket = %s\n" % sock_path(world))
    os.chmod(p, 0o644)
    return p


def start(make_outpost, world, extra=None):
    ov = {"local": {"socket": sock_path(world)}}
    ov.update(extra or {})
    return make_outpost(overrides=ov)


def user_binary(world):
    """The outpost binary where a non-root user can run it: the build
    tree may sit in a 0700 directory (a CI clone in mktemp -d does)."""
    p = os.path.join(world, "outpost")
    if not os.path.exists(p):
        shutil.copy2(OUTPOST, p)
        os.chmod(p, 0o755)
    return p


def sendmail_as(user, world, args, data, conf=None):
    """outpost sendmail run as user (None: root), without an accounts
    file, the system configuration in $OUTPOST_CONFIG."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.path.join(world, "home"),
           "OUTPOST_CONFIG": conf or client_conf(world)}
    cmd = [OUTPOST if user is None else user_binary(world), "sendmail"] + \
        list(args)
    if user is not None:
        cmd = [RUNUSER, "-u", user, "--", "env"] + \
            ["%s=%s" % kv for kv in env.items()] + cmd
    else:
        env["HOME"] = os.path.join(world, "roothome")
        os.makedirs(env["HOME"], mode=0o700, exist_ok=True)
    return subprocess.run(cmd, input=data, capture_output=True, timeout=60,
                          env=env)


def outbox_as(user, world, *args):
    env = ["HOME=" + os.path.join(world, "home"),
           "OUTPOST_CONFIG=" + client_conf(world), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    return subprocess.run([RUNUSER, "-u", user, "--", "env"] + env +
                          [user_binary(world), "outbox"] + list(args),
                          capture_output=True, timeout=60)


def new_qid(o, before):
    new = [q for q in o.queue_ids() if q not in before]
    assert len(new) == 1, (new, o.log_text()[-2000:])
    return new[0]


def envelope(o, qid):
    env, msg = o.stored(qid)
    return env.decode(), msg.decode()


def raw_local(path, lines, uid=None):
    """Speaks SMTP over the socket (as uid when given); returns the
    greeting and each reply, as text."""
    script = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rb")
def reply():
    out = []
    while True:
        l = f.readline()
        if not l:
            out.append("<closed>")
            break
        out.append(l.decode().rstrip())
        if l[3:4] != b"-":
            break
    return "\n".join(out)
print(reply().replace("\n", "|"))
for cmd in sys.argv[2:]:
    try:
        s.sendall(cmd.encode() + b"\r\n")
        print(reply().replace("\n", "|"))
    except OSError:
        print("<closed>")
        break
"""

    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    r = subprocess.run([sys.executable, "-c", script, path] + list(lines),
                       capture_output=True, timeout=30,
                       preexec_fn=drop if uid is not None else None)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().splitlines()


# what Debian cron writes for a user's crontab: bare names in the header
MSG = ("From: %s (Cron Daemon)\nTo: bob@example.org\nCc: root\n"
       "Subject: Cron <%s@host> true\n\nhello\n" % (LUSER, LUSER)).encode()


def test_user_submits_as_login(make_outpost, world, luser):
    o = start(make_outpost, world)
    st = os.stat(sock_path(world))
    assert st.st_mode & 0o777 == 0o666
    assert os.stat(os.path.dirname(sock_path(world))).st_mode & 0o777 == 0o755
    before = o.queue_ids()
    r = sendmail_as(LUSER, world, ["-t", "-FCronDaemon", "-i", "-B8BITMIME",
                                   "-oem"], MSG)
    assert r.returncode == EX_OK, r.stderr
    qid = new_qid(o, before)
    env, msg = envelope(o, qid)
    me = "%s@%s" % (LUSER, DOMAIN)
    assert "auth-user %s\n" % me in env
    assert "from %s\n" % me in env
    assert "root@%s" % DOMAIN in env      # the bare Cc qualified
    assert "From: %s (Cron Daemon)" % me in msg
    assert "Cc: root@%s" % DOMAIN in msg
    assert "(uid %d)" % luser.pw_uid in msg and "with ESMTPA" in msg
    assert "connect from local uid=%d(%s)" % (luser.pw_uid, LUSER) in \
        o.log_text()


def test_user_other_sender_refused(make_outpost, world, luser):
    o = start(make_outpost, world)
    before = o.queue_ids()
    r = sendmail_as(LUSER, world, ["-t"],
                    b"From: boss@example.org\nTo: bob@example.org\n\nx\n")
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert b"553 5.7.1" in r.stderr and b"From:" in r.stderr
    r = sendmail_as(LUSER, world, ["-f", "boss@example.org", "-t"],
                    b"To: bob@example.org\n\nx\n")
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert b"553 5.7.1 Sender address rejected" in r.stderr
    assert o.queue_ids() == before
    # and the server keeps serving the same user
    r = sendmail_as(LUSER, world, ["bob@example.org"], b"Subject: ok\n\nx\n")
    assert r.returncode == EX_OK, r.stderr


def test_root_sends_as_anyone(make_outpost, world):
    o = start(make_outpost, world)
    before = o.queue_ids()
    r = sendmail_as(None, world, ["-f", "boss@example.org", "-t"],
                    b"From: Boss <boss@example.org>\nTo: bob@example.org\n\n"
                    b"x\n")
    assert r.returncode == EX_OK, r.stderr
    env, msg = envelope(o, new_qid(o, before))
    assert "auth-user root@%s\n" % DOMAIN in env
    assert "from boss@example.org\n" in env
    assert "From: Boss <boss@example.org>" in msg


def test_protocol_on_the_socket(make_outpost, world, luser):
    o = start(make_outpost, world)
    out = raw_local(sock_path(world), ["EHLO cron.local", "STARTTLS",
                                       "AUTH PLAIN AGZvbwBiYXI=",
                                       "MAIL FROM:<%s@%s>" % (LUSER, DOMAIN),
                                       "RSET", "QUIT"], uid=luser.pw_uid)
    assert out[0].startswith("220 ")
    assert "STARTTLS" not in out[1] and "AUTH" not in out[1]
    assert out[2].startswith("502 5.5.1")
    assert out[3].startswith("503 5.5.1 Already authenticated")
    assert out[4].startswith("250 2.1.0")
    assert out[6].startswith("221")
    # a uid without a user name cannot be mapped to an address
    out = raw_local(sock_path(world), ["EHLO x"], uid=NOBODY_UID)
    assert out[0].startswith("554 5.7.1"), out
    assert out[1] == "<closed>", out
    assert "uid %d has no user name" % NOBODY_UID in o.log_text()
    assert o.noop_works()


@pytest.mark.parametrize("n", [1])
def test_user_quota_applies(make_outpost, world, luser, n):
    o = start(make_outpost, world, {"limits": {"daily_messages": str(n)}})
    r = sendmail_as(LUSER, world, ["bob@example.org"], b"Subject: 1\n\nx\n")
    assert r.returncode == EX_OK, r.stderr
    r = sendmail_as(LUSER, world, ["bob@example.org"], b"Subject: 2\n\nx\n")
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert b"5.4.5" in r.stderr
    # root is another name: its own count
    r = sendmail_as(None, world, ["bob@example.org"], b"Subject: 3\n\nx\n")
    assert r.returncode == EX_OK, r.stderr


def test_socket_off(make_outpost, world, luser):
    o = start(make_outpost, world, {"local": {"socket": ""}})
    assert not os.path.exists(sock_path(world))
    s = socket.socket(socket.AF_UNIX)
    with pytest.raises(OSError):
        s.connect(sock_path(world))
    s.close()
    # no [local] in the system configuration: nothing to submit to
    before = o.queue_ids()
    r = sendmail_as(LUSER, world, ["bob@example.org"], b"x\n",
                    conf=client_conf(world, socket_on=False))
    assert r.returncode == EX_CONFIG, r.stderr
    assert b"no local outpostd socket" in r.stderr
    assert o.queue_ids() == before


def test_daemon_down_outbox_then_flush(make_outpost, world, luser):
    o = start(make_outpost, world)
    o.stop()
    assert not os.path.exists(sock_path(world))   # removed at exit
    r = sendmail_as(LUSER, world, ["-t"], b"To: bob@example.org\n"
                    b"Subject: later\n\nx\n")
    assert r.returncode == EX_OK, r.stderr
    assert b"waits in the outbox" in r.stderr
    r = outbox_as(LUSER, world, "list")
    assert b"account=@local" in r.stdout, r.stdout
    o.start()
    wait_until(lambda: os.path.exists(sock_path(world)))
    before = o.queue_ids()
    r = outbox_as(LUSER, world, "flush")
    assert r.returncode == EX_OK, (r.stdout, r.stderr)
    env, msg = envelope(o, new_qid(o, before))
    assert "auth-user %s@%s\n" % (LUSER, DOMAIN) in env
    assert b"outbox is empty" in outbox_as(LUSER, world, "list").stdout


def start_fails(make_outpost, world, path):
    o = make_outpost(overrides={"local": {"socket": path}}, start=False)
    o.start(wait=False)
    rc = o.proc.wait(timeout=20)
    o.proc = None
    assert rc != 0
    return o.log_text()


def test_bad_socket_places_refused(make_outpost, world, luser):
    # a directory others may write to
    wd = os.path.join(world, "open")
    os.mkdir(wd)
    os.chmod(wd, 0o1777)
    log = start_fails(make_outpost, world, os.path.join(wd, "o.sock"))
    assert "is writable by group or others" in log
    # a directory of some other user
    ud = os.path.join(world, "users")
    os.mkdir(ud, 0o755)
    os.chown(ud, luser.pw_uid, luser.pw_gid)
    log = start_fails(make_outpost, world, os.path.join(ud, "o.sock"))
    assert "belongs to uid %d" % luser.pw_uid in log
    # something that is not a socket
    os.makedirs(os.path.dirname(sock_path(world)), mode=0o755)
    with open(sock_path(world), "w") as f:
        f.write("x")
    log = start_fails(make_outpost, world, sock_path(world))
    assert "exists and is not a socket" in log
    os.unlink(sock_path(world))
    # a live socket of another daemon is left alone
    o = start(make_outpost, world)
    log = start_fails(make_outpost, world, sock_path(world))
    assert "another server is answering there" in log
    assert o.noop_works()
    r = sendmail_as(LUSER, world, ["bob@example.org"], b"Subject: x\n\nx\n")
    assert r.returncode == EX_OK, r.stderr


def test_stale_socket_replaced(make_outpost, world, luser):
    o = start(make_outpost, world)
    o.kill9()
    assert os.path.exists(sock_path(world))     # left by the crash
    o.start()
    before = o.queue_ids()
    r = sendmail_as(LUSER, world, ["bob@example.org"], b"Subject: x\n\nx\n")
    assert r.returncode == EX_OK, r.stderr
    new_qid(o, before)

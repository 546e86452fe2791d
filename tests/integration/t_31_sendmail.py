"""`outpost sendmail` (and the binary called as `sendmail`): -t with
To/Cc/Bcc and Bcc removed, bare recipients qualified, "." ending the
input without -i, Debian cron's options, the durable outbox on temporary
failure and `outpost outbox list|flush`, a permanent refusal reported,
and real callers: git send-email --sendmail-cmd and s-nail -S mta=."""
import os
import shutil
import socket
import stat
import subprocess

import pytest

from conftest import OUTPOST, PASSWORD, RCPT, USER
import smtpfake

EX_UNAVAILABLE = 69


def write_accounts(home, o, port=None, extra=""):
    cfg = os.path.join(home, ".config", "outpost")
    os.makedirs(cfg, exist_ok=True)
    pw = os.path.join(home, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    with open(os.path.join(cfg, "accounts"), "w") as f:
        f.write("default = op\nqualify_domain = example.org\n\n[op]\n"
                "host = 127.0.0.1\nport = %d\ntls = implicit\nuser = %s\n"
                "password_file = %s\nca_file = %s\ntls_servername = localhost\n"
                "from = %s\n%s" % (port or o.port_tls, USER, pw, o.ca, USER, extra))


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return str(h)


def env_for(home):
    e = dict(os.environ)
    e.pop("OUTPOST_PASSWORD", None)
    e.pop("XDG_CONFIG_HOME", None)
    e.pop("XDG_STATE_HOME", None)
    e.pop("OUTPOST_OUTBOX", None)
    e["HOME"] = home
    return e


def sendmail(home, args, data, argv0=None):
    cmd = [argv0] if argv0 else [OUTPOST, "sendmail"]
    return subprocess.run(cmd + list(args), input=data, capture_output=True,
                          timeout=60, env=env_for(home))


def new_qid(o, before):
    new = [q for q in o.queue_ids() if q not in before]
    assert len(new) == 1, new
    return new[0]


def test_sendmail_t_bcc_and_qualify(outpost_module, home):
    o = outpost_module
    write_accounts(home, o)
    before = set(o.queue_ids())
    msg = (b"To: Bob <bob@example.org>\nCc: \"Carol, C.\" <carol@example.org>\n"
           b"Bcc: hidden@example.org\nSubject: t\n\nbody\n")
    r = sendmail(home, ["-t", "-i", "root"], msg)
    assert r.returncode == 0, r.stderr
    env, body = o.stored(new_qid(o, before))
    for a in (b"bob@example.org", b"root@example.org", b"carol@example.org",
              b"hidden@example.org"):
        assert a in env, env
    assert b"Bcc" not in body and b"hidden" not in body
    assert b"From: " + USER.encode() in body       # added when missing


def test_sendmail_dot_ends_without_i(outpost_module, home):
    o = outpost_module
    write_accounts(home, o)
    before = set(o.queue_ids())
    r = sendmail(home, [RCPT], b"Subject: dot\n\nkept\n.\nlost\n")
    assert r.returncode == 0, r.stderr
    _, body = o.stored(new_qid(o, before))
    assert b"kept\r\n" in body and b"lost" not in body
    before = set(o.queue_ids())
    r = sendmail(home, ["-oi", RCPT], b"Subject: dot\n\nkept\n.\nalso kept\n")
    assert r.returncode == 0, r.stderr
    _, body = o.stored(new_qid(o, before))
    assert b"\r\n..\r\nalso kept\r\n" in body or b"\r\n.\r\nalso kept" in body


def test_sendmail_argv0_and_cron_options(outpost_module, home, tmp_path):
    """Called as `sendmail` with Debian cron's options."""
    o = outpost_module
    write_accounts(home, o)
    link = tmp_path / "sendmail"
    os.symlink(OUTPOST, link)
    before = set(o.queue_ids())
    r = sendmail(home, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
                 b"Subject: Cron <root@host> true\n\nout\n", argv0=str(link))
    assert r.returncode == 0, r.stderr
    env, body = o.stored(new_qid(o, before))
    assert b"root@example.org" in env
    assert b'From: "CronDaemon" <' + USER.encode() + b">" in body


def test_sendmail_outbox_on_tempfail_then_flush(outpost_module, home):
    """Server down: exit 0, the message waits in a 0700 outbox; `outbox
    flush` delivers it once the account works."""
    o = outpost_module
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    write_accounts(home, o, port=dead)
    r = sendmail(home, [RCPT], b"Subject: later\n\nwait for me\n")
    assert r.returncode == 0, r.stderr
    assert b"outbox" in r.stderr
    box = os.path.join(home, ".local", "state", "outpost", "outbox")
    assert stat.S_IMODE(os.stat(box).st_mode) == 0o700
    envs = [f for f in os.listdir(box) if f.endswith(".env")]
    assert len(envs) == 1
    r = subprocess.run([OUTPOST, "outbox", "list"], capture_output=True,
                       env=env_for(home), timeout=30)
    assert r.returncode == 0 and b"waiting" in r.stdout and RCPT.encode() in r.stdout
    r = subprocess.run([OUTPOST, "outbox", "flush"], capture_output=True,
                       env=env_for(home), timeout=60)
    assert r.returncode == 75, r         # still down
    write_accounts(home, o)
    before = set(o.queue_ids())
    r = subprocess.run([OUTPOST, "outbox", "flush"], capture_output=True,
                       env=env_for(home), timeout=60)
    assert r.returncode == 0, r
    _, body = o.stored(new_qid(o, before))
    assert b"wait for me" in body
    assert [f for f in os.listdir(box) if f.endswith((".env", ".eml"))] == []


def test_sendmail_permanent_refusal(home, tmp_path, outpost_module):
    """A 5xx to MAIL is reported with the server's words; not queued."""
    d = str(tmp_path)
    ca = smtpfake.make_ca(d)
    cert = smtpfake.make_leaf(d, ca, ["localhost", "127.0.0.1"])

    def script(conn):
        conn.send(b"220 fake ESMTP\r\n")
        for _ in range(20):
            line = conn.readline()
            if not line:
                return
            v = line[:4].upper()
            if v == b"EHLO":
                conn.send(smtpfake.EHLO_AFTER_TLS)
            elif v == b"AUTH":
                conn.send(b"235 ok\r\n")
            elif v == b"MAIL":
                conn.send(b"550 5.7.1 Sender address rejected: spammer\r\n")
            elif v == b"QUIT":
                conn.send(b"221 bye\r\n")
                return
            else:
                conn.send(b"503 5.5.1 no\r\n")
    with smtpfake.FakeSMTP(script, "implicit", cert) as f:
        write_accounts(home, outpost_module, port=f.port,
                       extra="ca_file = %s\n" % ca[2])
        r = sendmail(home, [RCPT], b"Subject: x\n\nx\n")
        assert r.returncode == EX_UNAVAILABLE, r
        assert b"550 5.7.1 Sender address rejected: spammer" in r.stderr
    box = os.path.join(home, ".local", "state", "outpost", "outbox")
    assert not os.path.exists(box) or not [
        f for f in os.listdir(box) if f.endswith(".env")]


@pytest.mark.skipif(not os.path.exists("/usr/lib/git-core/git-send-email"),
                    reason="git send-email not installed (apt-get install git-email)")
def test_git_send_email(outpost_module, home, tmp_path):
    o = outpost_module
    write_accounts(home, o)
    repo = tmp_path / "repo"
    repo.mkdir()
    g = ["git", "-C", str(repo), "-c", "user.name=A", "-c", "user.email=" + USER]
    env = env_for(home)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    (repo / "f").write_text("hello\n.\n")
    subprocess.run(g + ["add", "f"], check=True, env=env)
    subprocess.run(g + ["commit", "-qm", "first"], check=True, env=env)
    before = set(o.queue_ids())
    r = subprocess.run(g + ["send-email", "--sendmail-cmd=%s sendmail" % OUTPOST,
                            "--to=" + RCPT, "--from=" + USER, "--confirm=never",
                            "--no-validate", "--quiet", "--root", "HEAD"],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r
    env_b, body = o.stored(new_qid(o, before))
    assert b"[PATCH] first" in body and RCPT.encode() in env_b


@pytest.mark.skipif(shutil.which("s-nail") is None, reason="s-nail not installed")
def test_s_nail(outpost_module, home):
    o = outpost_module
    write_accounts(home, o)
    before = set(o.queue_ids())
    env = env_for(home)
    # s-nail runs the mta as "sendmail" (argv[0]) and exports HOME from
    # the password database, so the accounts file is found through
    # XDG_CONFIG_HOME here
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    r = subprocess.run(["s-nail", "-n", "-S", "mta=%s" % OUTPOST, "-S", "sendwait",
                        "-s", "from s-nail", RCPT], input=b"hi from s-nail\n",
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r
    _, body = o.stored(new_qid(o, before))
    assert b"Subject: from s-nail" in body

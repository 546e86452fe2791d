"""
Helpers for the delivery tests (t_40_*): a test DNS server (python3-dnslib
serving a zone on a loopback UDP port), a real receiving server
(python3-aiosmtpd) and a scripted SMTP server for the roles aiosmtpd
cannot play (faults, DSN, 452, TLS breakage, huge replies).

Everything listens on 127.0.0.x only; every wait is bounded.
"""
import os
import select
import socket
import socketserver
import ssl
import threading
import time

from dnslib import AAAA, A, DNSRecord, MX, QTYPE, RCODE, RR

from conftest import free_port, wait_until


class ZoneDNS:
    """A DNS server on 127.0.0.1:PORT (UDP) answering from zone:
    {"name": [("MX", (pref, host)), ("A", "127.0.0.1"), ...]}
    or {"name": "timeout"} (never answers) or {"name": "servfail"}.
    Names are lowercase without the trailing dot; unknown names get
    NXDOMAIN."""

    def __init__(self, zone):
        self.zone = zone
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _answer(self, data):
        req = DNSRecord.parse(data)
        q = req.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        self.queries.append((name, qtype))
        entry = self.zone.get(name)
        if entry == "timeout":
            return None
        reply = req.reply()
        if entry is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack()
        if entry == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        for t, v in entry:
            if t != qtype:
                continue
            if t == "MX":
                rd = MX(v[1], v[0])
            elif t == "A":
                rd = A(v)
            elif t == "AAAA":
                rd = AAAA(v)
            else:
                continue
            reply.add_answer(RR(q.qname, getattr(QTYPE, t), rdata=rd, ttl=60))
        return reply.pack()

    def _run(self):
        for _ in range(10 ** 9):
            if self.stop_flag:
                return
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, peer = self.sock.recvfrom(4096)
                out = self._answer(data)
                if out is not None:
                    self.sock.sendto(out, peer)
            except Exception:      # a malformed query: keep serving
                continue

    def stop(self):
        self.stop_flag = True
        self.thread.join(5)
        self.sock.close()


class Message:
    def __init__(self):
        self.mail_from = None
        self.mail_params = ""
        self.rcpts = []             # (addr, params)
        self.data = b""
        self.tls = False

    @property
    def rcpt_addrs(self):
        return [a for a, _ in self.rcpts]


def _path(arg):
    """'<a@b> PARAMS' -> ('a@b', 'PARAMS')"""
    arg = arg.strip()
    if arg.startswith("<"):
        end = arg.find(">")
        return arg[1:end], arg[end + 1:].strip()
    parts = arg.split(" ", 1)
    return parts[0], parts[1] if len(parts) > 1 else ""


class ScriptedSMTP:
    """A small threaded SMTP server whose answers tests choose.

    Options (attributes, may be changed between tries):
      greeting     "220 ..." line, or "hang" (never answer), or "huge"
                   (a 300 KB reply line)
      caps         EHLO keywords after the first line
      tls_ctx      server SSLContext: STARTTLS is offered with it
      broken_tls   after "220 Ready" to STARTTLS, send junk and close
      rcpt         function(addr) -> reply line
      data_reply   function(try_number, Message) -> reply line, or
                   "drop" (close in the middle of the data)
    Accepted messages land in .messages; every DATA try counts in
    .data_tries."""

    def __init__(self, host="127.0.0.1", port=None):
        self.greeting = "220 mx.test ESMTP scripted"
        self.caps = ["PIPELINING", "8BITMIME", "SIZE 10000000",
                     "ENHANCEDSTATUSCODES", "DSN"]
        self.tls_ctx = None
        self.broken_tls = False
        self.rcpt = lambda addr: "250 2.1.5 OK"
        self.data_reply = lambda n, msg: "250 2.0.0 OK queued"
        self.rcpt_limit = 0         # > 0: 452 4.5.3 past this many
        self.messages = []
        self.data_tries = 0
        self.connections = 0
        self.quits = 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 20

            def handle(self):
                with outer.lock:
                    outer.connections += 1
                outer._session(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((host, port or 0), Handler)
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def _session(self, sock):
        conn = _Conn(sock)
        try:
            self._dialog(conn)
        except (OSError, ssl.SSLError, _Closed):
            pass
        finally:
            try:
                conn.sock.close()
            except OSError:
                pass

    def _dialog(self, conn):
        if self.greeting == "hang":
            self.stop_event.wait(30)
            return
        if self.greeting == "huge":
            conn.send("220 " + "x" * 300000)
            self.stop_event.wait(10)
            return
        conn.send(self.greeting)
        msg = None
        tls = False
        for _ in range(10000):
            line = conn.readline()
            verb = line[:4].upper()
            if verb == "EHLO":
                caps = list(self.caps)
                if self.tls_ctx is not None and not tls:
                    caps.append("STARTTLS")
                lines = ["250-mx.test"] + ["250-" + c for c in caps[:-1]] + \
                    ["250 " + caps[-1]] if caps else ["250 mx.test"]
                conn.send("\r\n".join(lines))
            elif verb == "HELO":
                conn.send("250 mx.test")
            elif verb == "STAR" and self.tls_ctx is not None and not tls:
                conn.send("220 2.0.0 Ready to start TLS")
                if self.broken_tls:
                    conn.sock.sendall(b"this is not TLS\r\n" * 4)
                    return
                conn.sock = self.tls_ctx.wrap_socket(conn.sock,
                                                     server_side=True)
                conn.buf = b""
                tls = True
            elif verb == "MAIL":
                msg = Message()
                msg.tls = tls
                msg.mail_from, msg.mail_params = _path(line[10:])
                conn.send("250 2.1.0 OK")
            elif verb == "RCPT":
                addr, params = _path(line[8:])
                reply = self.rcpt(addr)
                if self.rcpt_limit and msg is not None and \
                        len(msg.rcpts) >= self.rcpt_limit:
                    reply = "452 4.5.3 Too many recipients"
                if reply.startswith("2") and msg is not None:
                    msg.rcpts.append((addr, params))
                conn.send(reply)
            elif verb == "DATA":
                if msg is None or not msg.rcpts:
                    conn.send("503 5.5.1 No valid recipients")
                    continue
                with self.lock:
                    self.data_tries += 1
                    n = self.data_tries
                conn.send("354 Go ahead")
                reply = self.data_reply(n, msg)
                if reply == "drop":
                    conn.readline()      # take one line, then vanish
                    return
                body = conn.read_data()
                msg.data = body
                if reply.startswith("2"):
                    with self.lock:
                        self.messages.append(msg)
                conn.send(reply)
                msg = None
            elif verb == "RSET":
                msg = None
                conn.send("250 2.0.0 OK")
            elif verb == "NOOP":
                conn.send("250 2.0.0 OK")
            elif verb == "QUIT":
                with self.lock:
                    self.quits += 1
                conn.send("221 2.0.0 Bye")
                return
            else:
                conn.send("502 5.5.2 Not implemented")


class _Closed(Exception):
    pass


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")

    def readline(self):
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line.decode("utf-8", "surrogateescape")
            if len(self.buf) > 1 << 20:
                raise _Closed()
            d = self.sock.recv(65536)
            if not d:
                raise _Closed()
            self.buf += d
        raise _Closed()

    def read_data(self):
        out = []
        for _ in range(10 ** 7):
            line = self.readline()
            if line == ".":
                return ("\r\n".join(out) + "\r\n").encode("utf-8",
                                                          "surrogateescape")
            if line.startswith("."):
                line = line[1:]
            out.append(line)
        raise _Closed()


class AioSink:
    """python3-aiosmtpd as the receiving server: records every message."""

    def __init__(self, host="127.0.0.1", port=None, smtputf8=False):
        from aiosmtpd.controller import Controller

        outer = self
        self.messages = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                m = Message()
                m.mail_from = envelope.mail_from
                m.rcpts = [(r, "") for r in envelope.rcpt_tos]
                m.data = envelope.original_content or envelope.content
                outer.messages.append(m)
                return "250 2.0.0 OK accepted"

        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname=host, port=self.port,
                                     enable_SMTPUTF8=smtputf8)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def delivery_overrides(dns, port, **extra):
    d = {"dns": dns.addr, "port": str(port), "allow_loopback": "yes",
         "retry_interval": "1s", "max_retry_interval": "2s",
         "dns_timeout": "1s", "dns_tries": "1", "connect_timeout": "3s",
         "command_timeout": "3s"}
    d.update(extra)
    return {"delivery": d}


def wait_log(o, pattern, timeout=20.0):
    """Waits until the daemon's log matches pattern (a compiled regex or a
    substring); returns the match or the text."""
    import re

    rx = pattern if hasattr(pattern, "search") else re.compile(re.escape(pattern))
    found = []

    def pred():
        m = rx.search(o.log_text())
        if m:
            found.append(m)
            return True
        return False

    assert wait_until(pred, timeout=timeout), \
        "log never matched %r; tail:\n%s" % (rx.pattern, o.log_text()[-3000:])
    return found[0]


def wait_queue_empty(o, timeout=20.0):
    assert wait_until(lambda: not o.queue_files(), timeout=timeout), \
        "queue not empty: %r\n%s" % (o.queue_files(), o.log_text()[-3000:])

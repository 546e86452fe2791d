"""
Small hostile or misconfigured SMTP servers for the client tests
(t_30_send, t_31_sendmail, t_32_doctor), and certificates made with the
`cryptography` package.

FakeSMTP(script, tls=None|"implicit"|"starttls", cert=(certfile, keyfile))
runs on a free loopback port in a thread and answers each connection with
a script: a callable taking a Conn (send/readline/starttls helpers).
Every wait is bounded; the server stops in close().
"""
import datetime
import os
import socket
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress


def make_ca(dirpath, name="Test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    path = os.path.join(dirpath, "fake-ca.pem")
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def make_leaf(dirpath, ca, names, days_valid=(-30, 365), tag="leaf"):
    """A server certificate signed by ca for names (DNS names or IPs),
    valid from now+days_valid[0] to now+days_valid[1] days."""
    ca_cert, ca_key, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_valid[0]))
            .not_valid_after(now + datetime.timedelta(days=days_valid[1]))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cpath = os.path.join(dirpath, tag + ".crt")
    kpath = os.path.join(dirpath, tag + ".key")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cpath, kpath


class Conn:
    def __init__(self, sock, server):
        self.sock = sock
        self.server = sock
        self.srv = server
        self.buf = b""
        self.lines = []          # every line received (for assertions)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def readline(self):
        for _ in range(100000):
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                self.lines.append(line)
                self.srv.received.append(line)
                return line
            d = self.sock.recv(65536)
            if not d:
                return b""
            self.buf += d
        return b""

    def read_data(self):
        """Reads DATA content up to the final dot; returns the raw bytes."""
        out = b""
        for _ in range(1000000):
            line = self.readline()
            if not line or line == b".\r\n":
                break
            out += line
        self.srv.messages.append(out)
        return out

    def starttls(self):
        self.sock = self.srv.ctx.wrap_socket(self.sock, server_side=True)
        self.buf = b""

    def ehlo_session(self, ehlo_lines, auth_reply=None, rcpt_reply=None,
                     dot_reply=b"250 2.0.0 OK queued\r\n"):
        """A plain ESMTP dialogue: answers EHLO with ehlo_lines, STARTTLS,
        AUTH with auth_reply (or 235), MAIL, RCPT (rcpt_reply(addr) or
        250), DATA, QUIT."""
        for _ in range(1000):
            line = self.readline()
            if not line:
                return
            verb = line.split(b" ")[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                self.send(ehlo_lines)
            elif verb == b"STARTTLS":
                self.send(b"220 2.0.0 go ahead\r\n")
                self.starttls()
            elif verb == b"AUTH":
                self.send(auth_reply or b"235 2.7.0 ok\r\n")
            elif verb == b"MAIL":
                self.send(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                addr = line[line.find(b"<") + 1:line.find(b">")].decode()
                self.send(rcpt_reply(addr) if rcpt_reply else b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                self.send(b"354 go\r\n")
                self.read_data()
                self.send(dot_reply)
            elif verb == b"RSET":
                self.send(b"250 2.0.0 ok\r\n")
            elif verb == b"QUIT":
                self.send(b"221 2.0.0 bye\r\n")
                return
            else:
                self.send(b"502 5.5.1 what\r\n")


EHLO_TLS = (b"250-fake.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
            b"250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
EHLO_AFTER_TLS = (b"250-fake.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"
                  b"250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")


class FakeSMTP:
    def __init__(self, script, tls=None, cert=None):
        self.script = script
        self.tls = tls
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert[0], cert[1])
        self.received = []
        self.messages = []
        self.errors = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.stop = False
        self.conns = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns += 1
            s.settimeout(20)
            try:
                if self.tls == "implicit":
                    s = self.ctx.wrap_socket(s, server_side=True)
                self.script(Conn(s, self))
            except (OSError, ssl.SSLError) as e:
                self.errors.append(repr(e))
            finally:
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(timeout=10)
        self.lsock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def greet_then_tls_session(conn, ehlo=EHLO_TLS, ehlo_tls=EHLO_AFTER_TLS, **kw):
    """STARTTLS server: plaintext greeting, STARTTLS, then ehlo_session."""
    conn.send(b"220 fake.example ESMTP\r\n")
    for _ in range(100):
        line = conn.readline()
        if not line:
            return
        verb = line.split(b" ")[0].strip().upper()
        if verb == b"EHLO":
            conn.send(ehlo)
        elif verb == b"STARTTLS":
            conn.send(b"220 2.0.0 go ahead\r\n")
            conn.starttls()
            conn.ehlo_session(ehlo_tls, **kw)
            return
        elif verb == b"QUIT":
            conn.send(b"221 bye\r\n")
            return
        else:
            conn.send(b"530 5.7.0 Must issue a STARTTLS command first\r\n")

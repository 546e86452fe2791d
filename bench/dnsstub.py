#!/usr/bin/python3
"""
dnsstub — the tiny loopback DNS server of benchmark scenario 5 (delivery
from a filled spool): answers outpost's MX/A/AAAA queries for the
benchmark's destination domains so that outpost's delivery engine never
asks the system resolver and only ever connects to 127.x sinks.

  dnsstub.py -l 127.0.0.1:PORT [-t SECONDS] NAME=127.x.y.z ...

For each NAME: MX -> "10 NAME" (with its A record as additional data),
A -> the address, AAAA and anything else -> NOERROR without answers.
Unknown names -> NXDOMAIN.  SIGUSR2 switches to "down": every query gets
SERVFAIL (outpost defers, as for a broken resolver), which is how the
benchmark fills outpost's spool without delivering; SIGUSR1 switches back
to "up".  Starts up.

Stdlib only (Debian's python3), UDP only, loopback only.  Hostile input:
queries longer than 512 octets, with more or less than one question, with
compression pointers or over-long labels in the question are dropped.
Exits after -t seconds (default 900) or on SIGTERM/SIGINT; every receive
waits at most 0.5 s, so the loop always sees the deadline.
"""
import ipaddress
import signal
import socket
import struct
import sys
import time

QTYPE_A, QTYPE_MX, QTYPE_AAAA = 1, 15, 28
state = {"up": True, "stop": False}


def usage():
    sys.stderr.write("usage: dnsstub.py -l 127.0.0.1:PORT [-t SECONDS] "
                     "NAME=127.x.y.z ...\n")
    sys.exit(2)


def parse_question(pkt):
    """(id, flags, qname bytes as on the wire, lowercase name, qtype,
    end offset) or None when malformed."""
    if len(pkt) < 12 or len(pkt) > 512:
        return None
    qid, flags, qd, _an, _ns, _ar = struct.unpack("!6H", pkt[:12])
    if qd != 1 or flags & 0x8000:           # one question, a query
        return None
    off, labels = 12, []
    for _ in range(128):                     # bounded: at most 127 labels
        if off >= len(pkt):
            return None
        n = pkt[off]
        if n == 0:
            off += 1
            break
        if n > 63 or off + 1 + n > len(pkt):
            return None
        labels.append(pkt[off + 1:off + 1 + n])
        off += 1 + n
    else:
        return None
    if off + 4 > len(pkt):
        return None
    qtype, _qclass = struct.unpack("!2H", pkt[off:off + 4])
    wire = pkt[12:off]
    name = b".".join(labels).decode("ascii", "replace").lower()
    return qid, flags, wire, name, qtype, off + 4


def rr(name_ptr, rtype, rdata, ttl=60):
    return name_ptr + struct.pack("!2HIH", rtype, 1, ttl, len(rdata)) + rdata


def answer(pkt, zone):
    q = parse_question(pkt)
    if q is None:
        return None
    qid, flags, wire, name, qtype, end = q
    question = pkt[12:end]
    rd = flags & 0x0100
    if not state["up"]:
        return struct.pack("!6H", qid, 0x8000 | rd | 2, 1, 0, 0, 0) + question
    if name not in zone:
        return struct.pack("!6H", qid, 0x8400 | rd | 3, 1, 0, 0, 0) + question
    ptr = b"\xc0\x0c"                        # the name in the question
    an, ar = [], []
    addr = zone[name]
    if qtype == QTYPE_MX:
        an.append(rr(ptr, QTYPE_MX, struct.pack("!H", 10) + wire))
        ar.append(rr(ptr, QTYPE_A, addr))
    elif qtype == QTYPE_A:
        an.append(rr(ptr, QTYPE_A, addr))
    hdr = struct.pack("!6H", qid, 0x8400 | rd, 1, len(an), 0, len(ar))
    return hdr + question + b"".join(an) + b"".join(ar)


def main(argv):
    listen, limit, zone = None, 900.0, {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-l" and i + 1 < len(argv):
            listen = argv[i + 1]
            i += 2
        elif a == "-t" and i + 1 < len(argv):
            limit = float(argv[i + 1])
            i += 2
        elif "=" in a:
            n, ip = a.split("=", 1)
            addr = ipaddress.IPv4Address(ip)
            if not addr.is_loopback:
                sys.exit("dnsstub: %s is not a loopback address" % ip)
            zone[n.lower().rstrip(".")] = addr.packed
            i += 1
        else:
            usage()
    if listen is None or not zone or not 0 < limit <= 3600:
        usage()
    host, port = listen.rsplit(":", 1)
    if not ipaddress.IPv4Address(host).is_loopback:
        sys.exit("dnsstub: listen address must be 127.x")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, int(port)))
    s.settimeout(0.5)

    def on_sig(signum, _frame):
        if signum == signal.SIGUSR1:
            state["up"] = True
        elif signum == signal.SIGUSR2:
            state["up"] = False
        else:
            state["stop"] = True
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_sig)
    deadline = time.monotonic() + limit
    queries = 0
    while not state["stop"] and time.monotonic() < deadline:
        try:
            pkt, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if not ipaddress.IPv4Address(peer[0]).is_loopback:
            continue
        queries += 1
        out = answer(pkt, zone)
        if out is not None:
            try:
                s.sendto(out, peer)
            except OSError:
                pass
    sys.stderr.write("dnsstub: queries=%d\n" % queries)


if __name__ == "__main__":
    main(sys.argv[1:])

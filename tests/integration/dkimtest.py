"""Helpers for the DKIM tests: the DNS records that `outpost dkim show`
prints, served to dkimpy (the independent verifier) through its dnsfunc
hook, and signature checks on stored messages."""
import re

import dkim

from conftest import split_spool_file

RECORD_RE = re.compile(r'^(\S+)\._domainkey\.(\S+) IN TXT (.*)$')


def txt_join(quoted):
    """'"a" "b"' -> 'ab' (zone-file character-strings)."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', quoted)
    assert parts, quoted
    for p in parts:
        assert len(p.encode()) <= 255, "TXT string over 255 octets: %r" % p
    return "".join(parts)


def dns_records(o, domain="example.test"):
    """{b"sel._domainkey.domain.": b"v=DKIM1; ..."} from `outpost dkim show`."""
    r = o.cli("dkim", "show", domain)
    assert r.returncode == 0, (r.stdout, r.stderr)
    recs = {}
    for line in r.stdout.decode().splitlines():
        m = RECORD_RE.match(line)
        if m:
            name = "%s._domainkey.%s." % (m.group(1), m.group(2))
            recs[name.encode()] = txt_join(m.group(3)).encode()
    return recs


def dnsfunc_for(recs):
    def dnsfunc(name, timeout=5):
        if isinstance(name, str):
            name = name.encode()
        if not name.endswith(b"."):
            name += b"."
        return recs.get(name.lower())
    return dnsfunc


def signatures(msg):
    """The DKIM-Signature fields of msg, unfolded, as tag dicts."""
    head = msg.split(b"\r\n\r\n", 1)[0]
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head).split(b"\r\n")
    out = []
    for h in unfolded:
        if h.lower().startswith(b"dkim-signature:"):
            tags = {}
            for t in h.split(b":", 1)[1].split(b";"):
                t = t.strip()
                if b"=" in t:
                    k, v = t.split(b"=", 1)
                    tags[k.strip().decode()] = re.sub(rb"\s+", b"", v).decode()
            out.append(tags)
    return out


def verify_all(msg, recs):
    """Verifies every signature with dkimpy; returns the algorithms."""
    sigs = signatures(msg)
    d = dkim.DKIM(msg, minkey=1024)
    algs = []
    for i, tags in enumerate(sigs):
        ok = d.verify(idx=i, dnsfunc=dnsfunc_for(recs))
        assert ok, "signature %d (%s, s=%s) does not verify" % (
            i, tags.get("a"), tags.get("s"))
        algs.append(tags["a"])
    return algs


def stored_message(o, qid):
    env, msg = o.stored(qid)
    return msg


def spool_message_bytes(path):
    with open(path, "rb") as f:
        return split_spool_file(f.read())[1]

"""`outpost dns check DOMAIN`: PTR (forward-confirmed), SPF, DKIM and
DMARC checked against a python3-dnslib server on loopback; a good zone is
all ok (exit 0), a bad zone FAILs each item with the record to publish
(exit 1)."""
import json
import re

import pytest
from dnslib import PTR, QTYPE, RCODE, RR, TXT

from dkimtest import txt_join
from dlvtest import ZoneDNS

SRC = "192.0.2.10"
REV = "10.2.0.192.in-addr.arpa"


class TxtZoneDNS(ZoneDNS):
    """ZoneDNS plus TXT (a list of strings per record) and PTR."""

    def _answer(self, data):
        from dnslib import DNSRecord
        req = DNSRecord.parse(data)
        q = req.q
        name = str(q.qname).rstrip(".").lower()
        qtype = QTYPE[q.qtype]
        entry = self.zone.get(name)
        if qtype not in ("TXT", "PTR") or entry is None:
            return super()._answer(data)
        self.queries.append((name, qtype))
        reply = req.reply()
        for t, v in entry:
            if t == qtype == "TXT":
                reply.add_answer(RR(q.qname, QTYPE.TXT, rdata=TXT(v), ttl=60))
            elif t == qtype == "PTR":
                reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(v), ttl=60))
        return reply.pack()


def chunks(s):
    return [s[i:i + 255] for i in range(0, len(s), 255)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import Outpost
    o = Outpost(basedir=str(tmp_path_factory.getbasetemp()))
    r = o.cli("dkim", "show", "example.test")
    assert r.returncode == 0, r.stderr
    recs = dict(re.findall(r'^(\S+\._domainkey\.example\.test) IN TXT (.*)$',
                           r.stdout.decode(), re.M))
    assert len(recs) == 2, r.stdout
    yield o, {k: txt_join(v) for k, v in recs.items()}


def run(o, dns, *extra, source=SRC):
    d = {"dns": dns.addr, "dns_timeout": "1s", "dns_tries": "1"}
    if source:
        d["source_address"] = source
    o.edit_conf({"delivery": d})
    return o.cli("dns", "check", "example.test", *extra)


def good_zone(dkim):
    z = {
        REV: [("PTR", "mail.example.test")],
        "mail.example.test": [("A", SRC)],
        "example.test": [("TXT", ["v=spf1 mx ip4:192.0.2.0/28 -all"]),
                         ("MX", (10, "mx.example.test"))],
        "mx.example.test": [("A", "198.51.100.1")],
        "_dmarc.example.test": [("TXT", ["v=DMARC1; p=none"])],
    }
    for name, value in dkim.items():
        z[name] = [("TXT", chunks(value))]
    return z


def test_good_zone_all_ok(setup):
    """PTR+A match, SPF ip4/28 covers, both DKIM keys published, DMARC: every line ok, exit 0."""
    o, dkim = setup
    dns = TxtZoneDNS(good_zone(dkim))
    try:
        r = run(o, dns)
    finally:
        dns.stop()
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    lines = [l for l in out.splitlines() if re.match(r"^(ok|warn|FAIL)\s", l)]
    assert [l.split()[1] for l in lines] == ["ptr", "spf", "dkim", "dkim", "dmarc"], out
    assert all(l.startswith("ok ") for l in lines), out
    assert "mail.example.test" in out and "publish:" not in out


def test_bad_zone_fails_with_records(setup):
    """No PTR, SPF not covering, a wrong DKIM key, no DMARC: each FAILs with the record to publish, exit 1; --json says the same."""
    o, dkim = setup
    z = good_zone(dkim)
    del z[REV]
    del z["_dmarc.example.test"]
    z["example.test"] = [("TXT", ["v=spf1 ip4:203.0.113.0/24 ~all"])]
    ed = [k for k in dkim if k.startswith("mail-ed.")][0]
    rsa = [k for k in dkim if k.startswith("mail-rsa.")][0]
    z[ed] = [("TXT", ["v=DKIM1; k=ed25519; p=" + "A" * 43 + "="])]
    dns = TxtZoneDNS(z)
    try:
        r = run(o, dns)
        rj = run(o, dns, "--json")
    finally:
        dns.stop()
    out = r.stdout.decode()
    assert r.returncode == 1, (out, r.stderr)
    assert re.search(r"^FAIL\s+ptr\s.*192\.0\.2\.10 has no reverse DNS", out, re.M), out
    assert (REV + ". IN PTR ") in out
    assert re.search(r"^FAIL\s+spf\s.*does not cover 192\.0\.2\.10", out, re.M), out
    assert ('example.test IN TXT "v=spf1 ip4:192.0.2.10 ip4:203.0.113.0/24 -all"'
            in out), out
    assert re.search(r"^FAIL\s+dkim\s+%s publishes a different key" % re.escape(ed),
                     out, re.M), out
    assert re.search(r"^ok\s+dkim\s+%s" % re.escape(rsa), out, re.M), out
    fix = re.search(r"publish:\s+%s IN TXT (.*)$" % re.escape(ed), out, re.M)
    assert fix and txt_join(fix.group(1)) == dkim[ed], out
    assert re.search(r"^FAIL\s+dmarc\s", out, re.M), out
    assert '_dmarc.example.test IN TXT "v=DMARC1; p=none;' in out
    assert rj.returncode == 1, rj.stderr
    j = json.loads(rj.stdout)
    assert j["ok"] is False and j["domain"] == "example.test"
    verdicts = {(s["step"], s["verdict"]) for s in j["steps"]}
    assert ("ptr", "FAIL") in verdicts and ("dmarc", "FAIL") in verdicts
    assert all("fix" in s for s in j["steps"] if s["verdict"] == "FAIL")


def test_no_source_address_and_spf_cannot_tell(setup):
    """Without source_address: ptr warns and SPF says it cannot tell; a macro in SPF is 'cannot tell' too; warnings alone exit 0."""
    o, dkim = setup
    z = good_zone(dkim)
    dns = TxtZoneDNS(z)
    try:
        text = re.sub(r"(?m)^source_address\s*=.*\n", "", o.conf_text())
        with open(o.conf, "w") as f:
            f.write(text)
        r = run(o, dns, source=None)
        z["example.test"] = [("TXT", ["v=spf1 exists:%{i}.spf.example.test -all"])]
        r2 = run(o, dns)
    finally:
        dns.stop()
    out = r.stdout.decode()
    assert r.returncode == 0, (out, r.stderr)
    assert re.search(r"^warn\s+ptr\s.*source_address is not set", out, re.M), out
    assert re.search(r"^warn\s+spf\s.*cannot tell", out, re.M), out
    out2 = r2.stdout.decode()
    assert re.search(r"^warn\s+spf\s.*cannot tell.*macros", out2, re.M), out2


def test_usage_and_dns_timeout(setup):
    """Bad arguments exit 64; a DNS server that never answers FAILs each lookup, without a record to publish."""
    o, dkim = setup
    assert o.cli("dns").returncode == 64
    assert o.cli("dns", "check").returncode == 64
    assert o.cli("dns", "check", "bad_domain").returncode == 64
    dns = TxtZoneDNS({})
    dns.zone = {}
    try:
        # every name "timeout": a zone whose lookups never answer
        class Never(dict):
            def get(self, k, d=None):
                return "timeout"
        dns.zone = Never()
        r = run(o, dns)
    finally:
        dns.stop()
    out = r.stdout.decode()
    assert r.returncode == 1, (out, r.stderr)
    assert "DNS timeout" in out and "publish:" not in out, out

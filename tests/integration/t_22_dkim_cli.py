"""`outpost dkim keygen|list|show` and what `outpost init` prints: keys,
selectors, the DKIM/SPF/DMARC records, and the errors."""
import os
import re

from dkimtest import txt_join


def test_init_distinct_selectors(outpost_module):
    """`outpost init` made an Ed25519 key (selector mail-ed) and an RSA key (mail-rsa); `dkim list` shows both."""
    o = outpost_module
    d = os.path.join(o.dir, "data", "dkim", "example.test")
    assert sorted(os.listdir(d)) == ["mail-ed.ed25519.key", "mail-rsa.rsa.key"]
    r = o.cli("dkim", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert re.match(r"example\.test\s+mail-ed\s+ed25519-sha256\s+256\s", lines[0]), lines
    assert re.match(r"example\.test\s+mail-rsa\s+rsa-sha256\s+2048\s", lines[1]), lines


def test_show_prints_dkim_spf_dmarc(outpost_module):
    """`dkim show` prints both DKIM records (ed25519 p= is the raw 32-byte key, strings of at most 255 octets), an SPF record and the DMARC record."""
    o = outpost_module
    r = o.cli("dkim", "show", "Example.TEST")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    ed = re.search(r'^mail-ed\._domainkey\.example\.test IN TXT (.*)$', out, re.M)
    rsa = re.search(r'^mail-rsa\._domainkey\.example\.test IN TXT (.*)$', out, re.M)
    assert ed and rsa, out
    edv = txt_join(ed.group(1))
    m = re.fullmatch(r"v=DKIM1; k=ed25519; p=([A-Za-z0-9+/]{43}=)", edv)
    assert m, edv
    assert txt_join(rsa.group(1)).startswith("v=DKIM1; k=rsa; p=MIIB")
    assert len(rsa.group(1).split('" "')) == 2, "RSA record not split at 255"
    assert re.search(r'^example\.test IN TXT "v=spf1 ip4:SERVER-IPV4 -all"$', out, re.M), out
    assert ('_dmarc.example.test IN TXT "v=DMARC1; p=none; '
            'rua=mailto:postmaster@example.test"') in out


def test_keygen_options_and_errors(outpost_module):
    """keygen --algo/--selector/--bits write exactly that key; a taken selector, a bad domain, bad bits or algo are refused; show for a domain without keys exits 65."""
    o = outpost_module
    r = o.cli("dkim", "keygen", "cli.example", "--algo", "rsa", "--selector", "s2024",
              "--bits", "3072")
    assert r.returncode == 0, r.stderr
    assert "(rsa-sha256, 3072 bits)" in r.stdout.decode()
    assert os.listdir(os.path.join(o.dir, "data", "dkim", "cli.example")) == ["s2024.rsa.key"]
    # the same selector, either algorithm: refused, nothing overwritten
    r = o.cli("dkim", "keygen", "cli.example", "--algo", "ed25519", "--selector", "s2024")
    assert r.returncode == 73 and b"taken" in r.stderr, r
    r = o.cli("dkim", "keygen", "cli.example", "--algo", "ed25519")
    assert r.returncode == 0, r.stderr
    assert "mail-ed._domainkey.cli.example IN TXT" in r.stdout.decode()
    for args, words in [
        (("keygen", "bad_domain"), b"not a domain name"),
        (("keygen", "localhost"), b"not a domain name"),
        (("keygen", "x.example", "--bits", "1024"), b"--bits"),
        (("keygen", "x.example", "--algo", "dsa"), b"--algo"),
        (("keygen", "x.example", "--selector", "-bad", "--algo", "rsa"), b"not a selector"),
        (("keygen", "x.example", "--selector"), b"needs a value"),
        (("frobnicate",), b"unknown dkim command"),
    ]:
        r = o.cli("dkim", *args)
        assert r.returncode == 64 and words in r.stderr, (args, r)
    r = o.cli("dkim", "show", "nokey.example")
    assert r.returncode == 65 and b"no DKIM key for nokey.example" in r.stderr, r
    assert not os.path.exists(os.path.join(o.dir, "data", "dkim", "x.example", "mail-ed.ed25519.key"))

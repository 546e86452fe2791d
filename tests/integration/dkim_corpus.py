"""A corpus of varied messages for the DKIM tests (generated, so every
case says what it exercises).  Each entry: (name, message bytes with CRLF,
MAIL options).  All are From: alice@example.test, the test account."""
import base64
import os

FROM = b"From: Alice <alice@example.test>\r\n"
TO = b"To: Bob <bob@example.org>\r\n"


def _mid():
    return b"Message-ID: <" + os.urandom(6).hex().encode() + b"@example.test>\r\n"


def std(subject, body, extra=b"", date=True, mid=True):
    h = FROM + TO + b"Subject: " + subject + b"\r\n"
    if date:
        h += b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    if mid:
        h += _mid()
    return h + extra + b"\r\n" + body


def corpus():
    c = []

    def add(name, msg, opts=()):
        c.append((name, msg, list(opts)))

    add("plain", std(b"plain", b"Hello Bob.\r\n"))
    add("empty-body", std(b"empty body", b""))
    add("no-separator", FROM + TO + b"Subject: header only\r\n" + _mid())
    add("trailing-blank-lines", std(b"blank lines", b"text\r\n\r\n\r\n\r\n"))
    add("trailing-whitespace", std(b"trailing ws", b"a  \r\nb\t\r\n c \t \r\n"))
    add("whitespace-only-lines", std(b"ws lines", b" \r\n\t\r\n  \t \r\n"))
    add("whitespace-runs", std(b"ws runs", b"a  b\t\tc \t d\r\n\tindented\r\n"))
    add("blank-lines-inside", std(b"inside", b"one\r\n\r\n\r\ntwo\r\n \r\nthree\r\n"))
    add("ws-last-line-then-blank", std(b"x", b"end   \r\n   \r\n\r\n"))
    add("folded-subject", FROM + TO + b"Subject: a folded\r\n subject line\r\n\tcontinued\r\n"
        + _mid() + b"\r\nbody\r\n")
    long_subj = b"Subject: " + b" ".join([b"word%d" % i for i in range(150)])
    # fold it at ~70 columns
    parts, line = [], b""
    for w in long_subj.split(b" "):
        if len(line) + len(w) > 70:
            parts.append(line)
            line = b" " + w
        else:
            line = (line + b" " + w) if line else w
    parts.append(line)
    add("long-folded-subject", FROM + TO + b"\r\n".join(parts) + b"\r\n" + _mid() + b"\r\nbody\r\n")
    add("long-header-990", std(b"long", b"x\r\n", extra=b"X-Long: " + b"y" * 980 + b"\r\n"))
    refs = b"References: " + b"\r\n ".join(b"<%d.%s@example.test>" % (i, os.urandom(4).hex().encode())
                                          for i in range(40)) + b"\r\n"
    add("references-folded", std(b"refs", b"reply\r\n",
                                 extra=b"In-Reply-To: <1.a@example.test>\r\n" + refs))
    add("multipart-alternative", std(b"alt", (
        b"--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain part\r\n"
        b"--XYZ\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html part</p>\r\n"
        b"--XYZ--\r\n"), extra=b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=\"XYZ\"\r\n"))
    att = base64.encodebytes(os.urandom(3000)).replace(b"\n", b"\r\n")
    add("multipart-mixed-base64", std(b"attachment", (
        b"--B1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--B1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment;\r\n filename=\"data.bin\"\r\n\r\n" + att +
        b"--B1--\r\n"), extra=b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed;\r\n\tboundary=\"B1\"\r\n"))
    add("8bit-utf8-body", std(b"8bit", "Grüße, ça va? Ünïcödé ✓\r\n".encode(),
                              extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              b"Content-Transfer-Encoding: 8bit\r\n"), ["BODY=8BITMIME"])
    add("8bit-latin1-body", std(b"latin1", b"caf\xe9 na\xefve \xa9\r\n",
                                extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                                b"Content-Transfer-Encoding: 8bit\r\n"), ["BODY=8BITMIME"])
    add("smtputf8-headers", ("From: Ålice <alice@example.test>\r\nTo: Bøb <bob@example.org>\r\n"
                             "Subject: héllo wörld ✓\r\n").encode() + _mid() +
        b"\r\n" + "körper\r\n".encode(), ["SMTPUTF8", "BODY=8BITMIME"])
    add("quoted-printable", std(b"qp", b"caf=C3=A9 =\r\nsoft break\r\n",
                                extra=b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n"))
    add("leading-dots", std(b"dots", b".one\r\n..two\r\n.\r\n...\r\n"))
    add("two-to-fields", FROM + TO + b"To: carol@example.net\r\nSubject: two To\r\n" + _mid() + b"\r\nb\r\n")
    add("display-name-comments", b"From: \"Alice (the sender)\" (comment) <alice@example.test>\r\n"
        + TO + b"Subject: comments\r\n" + _mid() + b"\r\nb\r\n")
    add("group-to", FROM + b"To: undisclosed-recipients:;\r\nSubject: group\r\n" + _mid() + b"\r\nb\r\n")
    add("bcc-removed", std(b"bcc", b"b\r\n", extra=b"Bcc: secret@example.net\r\n"))
    add("no-date-no-mid", std(b"added", b"b\r\n", date=False, mid=False))
    add("list-headers", std(b"list", b"b\r\n", extra=(
        b"List-Id: Test list <test.example.test>\r\n"
        b"List-Unsubscribe: <mailto:unsub@example.test>,\r\n <https://example.test/u>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")))
    add("reply-to-cc", std(b"rt", b"b\r\n", extra=b"Reply-To: Alice <alice@example.test>\r\n"
                           b"Cc: c1@example.net, \"Two, Three\" <c2@example.net>\r\n"))
    add("line-998", std(b"998", b"z" * 998 + b"\r\nshort\r\n"))
    add("mixed-case-names", b"fRoM: alice@example.test\r\nTO: bob@example.org\r\nsUbJeCt: case\r\n"
        + _mid() + b"\r\nb\r\n")
    add("header-trailing-ws", FROM + TO + b"Subject: trailing   \r\n" + _mid() + b"\r\nb\r\n")
    add("empty-subject", FROM + TO + b"Subject:\r\n" + _mid() + b"\r\nb\r\n")
    add("content-type-folded", std(b"ct", b"b\r\n", extra=b"MIME-Version: 1.0\r\n"
                                   b"Content-Type: text/plain;\r\n\tcharset=\"us-ascii\";\r\n\tformat=flowed\r\n"))
    add("several-from-with-sender", b"From: alice@example.test, Dave <dave@example.test>\r\n"
        b"Sender: alice@example.test\r\n" + TO + b"Subject: two authors\r\n" + _mid() + b"\r\nb\r\n")
    add("many-lines", std(b"many", b"".join(b"line %d \r\n" % i for i in range(5000))))
    add("crlf-only-body", std(b"crlf", b"\r\n"))
    add("unicode-display-encoded", b"From: =?utf-8?q?=C3=85lice?= <alice@example.test>\r\n" + TO
        + b"Subject: =?utf-8?b?aMOpbGxv?=\r\n" + _mid() + b"\r\nb\r\n")
    return c

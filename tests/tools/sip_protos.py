#!/usr/bin/env python3
"""sip_protos.py - a generated set of malformed SIP requests, sent over UDP and TCP.

The set follows the plan of the PROTOS c07-sip test suite (one field of a valid INVITE with SDP
replaced at a time by an overflow, a format string, an integer boundary, a control character or
a non-ASCII byte), plus what only a stream transport has: duplicated and conflicting
Content-Length headers, lengths far beyond the body, negative and non-numeric lengths, requests
pipelined back to back, messages split across writes, bodies cut short. Every message is
generated here; nothing is read from elsewhere.

  sip_protos.py --port P [--host 127.0.0.1] [--transport udp|tcp|both] [--connections N]
                [--gap-ms G] [--limit N] [--seed S] [--list] [--user U]

--list prints the case names and sizes and sends nothing. Otherwise each case is sent once per
transport; over TCP the cases are spread round-robin over --connections connections, each
connection a few ms apart (--gap-ms) and reopened when the peer closes it (--fresh: a new
connection for every case, so each reaches a parser in its initial state). Replies are read and
thrown away (counted by status class). The last line printed is a summary:

  sent N (udp U, tcp T) on C connections; replies 1xx/2xx/3xx/4xx/5xx/6xx a/b/c/d/e/f; closed K

Exit 0 when every message was written (the peer closing a connection is counted, not an error),
1 when the target could not be reached at all. Only the Python standard library is used; every
wait is bounded.
"""
import argparse
import random
import re
import select
import socket
import sys
import time

CRLF = "\r\n"

# Values put in place of a field, PROTOS-style. Sizes stop at 65,536: larger values only test
# the kernel's buffers, and over UDP they do not fit a datagram anyway.
OVERFLOW_SIZES = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)
FORMAT_STRINGS = ("%s%s%s%s%s%s", "%n%n%n%n", "%x" * 64, "%99999999s", "%.1024d", "%s" * 512)
INTEGERS = ("-1", "0", "-2147483648", "2147483647", "2147483648", "4294967295", "4294967296",
            "18446744073709551615", "18446744073709551616", "99999999999999999999999",
            "0x7fffffff", "1e10", "-0", "+1", "00000000000000000000000001")
SPECIALS = ("", " ", "\t", ";", ":", "@", "<", ">", '"', "\\", "\x00", "\x00" * 64, "\r",
            "\n", "\r\n", "\r\n\r\n", "\x7f", "\xff" * 16, "\x1b[2J\x1b[0;0H", "%00",
            "sip:", "sip:@", "<sip:a@b", "a" * 16 + "\x00" + "b" * 16, "\u00e9\u00e8\u00ff",
            "\u202e", ";" * 1024, "," * 1024, ":" * 1024, "<" * 1024, "@" * 1024, '"' * 1025)


def attack_values():
    """The values each field is replaced with, as (label, value)."""
    out = []
    for n in OVERFLOW_SIZES:
        out.append(("a%d" % n, "a" * n))
    for n in (1024, 65536):
        out.append(("digits%d" % n, "9" * n))
        out.append(("spaces%d" % n, " " * n))
    for i, v in enumerate(FORMAT_STRINGS):
        out.append(("fmt%d" % i, v))
    for v in INTEGERS:
        out.append(("int%s" % v[:12], v))
    for i, v in enumerate(SPECIALS):
        out.append(("special%d" % i, v))
    return out


class Template:
    """A valid INVITE with SDP whose fields can be replaced one at a time."""

    def __init__(self, host, port, user, n, proto="UDP"):
        self.f = {
            "method": "INVITE",
            "ruri": "sip:%s@%s:%d" % (user, host, port),
            "version": "SIP/2.0",
            "via_proto": "SIP/2.0/" + proto,
            "via_host": "127.0.0.1",
            "via_port": "5099;rport",
            "via_branch": "z9hG4bK-protos-%d" % n,
            "from_name": "PROTOS",
            "from_uri": "sip:protos@127.0.0.1",
            "from_tag": "tag%d" % n,
            "to_uri": "sip:%s@%s" % (user, host),
            "call_id": "protos-%d@127.0.0.1" % n,
            "cseq": "1",
            "cseq_method": "INVITE",
            "contact_name": "PROTOS",
            "contact_uri": "sip:protos@127.0.0.1:5099",
            "expires": "120",
            "max_forwards": "70",
            "content_type": "application/sdp",
            "sdp_v": "0",
            "sdp_o_user": "protos",
            "sdp_o_sess": "1",
            "sdp_o_ver": "1",
            "sdp_o_net": "IN",
            "sdp_o_addrtype": "IP4",
            "sdp_o_addr": "127.0.0.1",
            "sdp_s": "-",
            "sdp_c_net": "IN",
            "sdp_c_addrtype": "IP4",
            "sdp_c_addr": "127.0.0.1",
            "sdp_t_start": "0",
            "sdp_t_stop": "0",
            "sdp_m_media": "audio",
            "sdp_m_port": "49170",
            "sdp_m_proto": "RTP/AVP",
            "sdp_m_fmt": "0 8 101",
            "sdp_a": "rtpmap:0 PCMU/8000",
            "sdp_a2": "fmtp:101 0-15",
        }
        self.content_length = None  # None: the body's real length

    def body(self):
        f = self.f
        lines = [
            "v=" + f["sdp_v"],
            "o=%s %s %s %s %s %s" % (f["sdp_o_user"], f["sdp_o_sess"], f["sdp_o_ver"],
                                     f["sdp_o_net"], f["sdp_o_addrtype"], f["sdp_o_addr"]),
            "s=" + f["sdp_s"],
            "c=%s %s %s" % (f["sdp_c_net"], f["sdp_c_addrtype"], f["sdp_c_addr"]),
            "t=%s %s" % (f["sdp_t_start"], f["sdp_t_stop"]),
            "m=%s %s %s %s" % (f["sdp_m_media"], f["sdp_m_port"], f["sdp_m_proto"],
                               f["sdp_m_fmt"]),
            "a=" + f["sdp_a"],
            "a=" + f["sdp_a2"],
        ]
        return (CRLF.join(lines) + CRLF).encode("utf-8", "surrogateescape")

    def encode(self, extra_headers=(), body=None):
        f = self.f
        if body is None:
            body = self.body()
        clen = str(len(body)) if self.content_length is None else self.content_length
        head = [
            "%s %s %s" % (f["method"], f["ruri"], f["version"]),
            "Via: %s %s:%s;branch=%s" % (f["via_proto"], f["via_host"], f["via_port"],
                                         f["via_branch"]),
            'From: "%s" <%s>;tag=%s' % (f["from_name"], f["from_uri"], f["from_tag"]),
            "To: <%s>" % f["to_uri"],
            "Call-ID: " + f["call_id"],
            "CSeq: %s %s" % (f["cseq"], f["cseq_method"]),
            'Contact: "%s" <%s>' % (f["contact_name"], f["contact_uri"]),
            "Expires: " + f["expires"],
            "Max-Forwards: " + f["max_forwards"],
            "Content-Type: " + f["content_type"],
        ]
        head.extend(extra_headers)
        if clen is not False:
            head.append("Content-Length: " + clen)
        text = CRLF.join(head) + CRLF + CRLF
        return text.encode("utf-8", "surrogateescape") + body


def field_cases(host, port, user, proto):
    """One case per (field, value): the PROTOS plan."""
    n = 0
    fields = list(Template(host, port, user, 0).f.keys())
    for field in fields:
        for label, value in attack_values():
            n += 1
            t = Template(host, port, user, n, proto)
            t.f[field] = value
            yield "%s-%s" % (field, label), t.encode()
    for label, value in attack_values():
        n += 1
        t = Template(host, port, user, n, proto)
        t.content_length = value
        yield "content_length-%s" % label, t.encode()


def structure_cases(host, port, user, proto):
    """Header-level and body-level shapes that a per-field plan does not reach."""
    n = 100000

    def tpl():
        nonlocal n
        n += 1
        return Template(host, port, user, n, proto)

    for count in (2, 16, 256, 2048):
        yield "dup_via%d" % count, tpl().encode(
            ["Via: SIP/2.0/UDP 10.0.0.%d:5060;branch=z9hG4bK%d" % (i % 250, i)
             for i in range(count)])
        yield "dup_call_id%d" % count, tpl().encode(["Call-ID: dup%d" % i for i in range(count)])
        yield "dup_cseq%d" % count, tpl().encode(["CSeq: %d INVITE" % i for i in range(count)])
        yield "dup_content_type%d" % count, tpl().encode(
            ["Content-Type: text/plain"] * count)
    for values in (("10", "20"), ("0", "4096"), ("4096", "0"), ("-1", "10"), ("10", "abc"),
                   ("999999999", "1"), ("1", "999999999"), ("4294967295", "4294967295")):
        t = tpl()
        t.content_length = False
        yield "dup_content_length_%s_%s" % values, t.encode(
            ["Content-Length: " + v for v in values])
    for value in ("100000", "1000000", "16777216", "67108864", "2147483647", "4294967295",
                  "4294967296", "9223372036854775807", "18446744073709551615", "-100",
                  "10 20", "l0", "0x100", "  7  ", "\t300", "65536", "65535", "65537",
                  "131072", "262144"):
        t = tpl()
        t.content_length = value
        yield "huge_content_length_%s" % value.strip()[:20], t.encode()
    for size in (1000, 65536, 262144):
        t = tpl()
        body = t.body() + b"a=" + b"x" * size + b"\r\n"
        yield "long_sdp_line%d" % size, t.encode(body=body)
    for count in (100, 5000):
        t = tpl()
        body = t.body() + b"".join(b"a=rtpmap:%d x%d/8000\r\n" % (i % 128, i)
                                   for i in range(count))
        yield "many_sdp_attrs%d" % count, t.encode(body=body)
    for count in (50, 2000):
        t = tpl()
        body = t.body() + b"".join(b"m=audio %d RTP/AVP 0\r\n" % (1000 + i) for i in range(count))
        yield "many_sdp_media%d" % count, t.encode(body=body)
    broken_bodies = (b"v=0", b"v=0\r\no=", b"v=\r\n\r\n\r\n", b"\r\n" * 100, b"\x00" * 300,
                     b"v=0\no=a 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4\nt=0 0\nm=audio\n",
                     b"m=audio 1 RTP/AVP " + b"0 " * 4000 + b"\r\n",
                     b"v=0\r\nc=IN IP6 " + b":" * 2000 + b"\r\n",
                     b"v=0\r\nc=IN IP4 1.2.3.4/" + b"9" * 100 + b"\r\n",
                     b"v=0\r\nb=AS:" + b"9" * 100 + b"\r\n",
                     b"v=0\r\nr=" + b"1 " * 3000 + b"\r\n", b"v=0\r\nz=" + b"1 -1h " * 1000 + b"\r\n",
                     b"v=0\r\nk=prompt\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"
                     + b"A" * 5000 + b"\r\n")
    for i, body in enumerate(broken_bodies):
        yield "broken_sdp%d" % i, tpl().encode(body=body)
    # Lines and whole messages of unusual shape.
    yield "header_no_colon", tpl().encode(["ThisHeaderHasNoColon"])
    yield "header_folded", tpl().encode(["Subject: a", " b", "\tc" * 3000])
    yield "header_name_long", tpl().encode(["X-" + "a" * 65536 + ": 1"])
    yield "headers_many", tpl().encode(["X-H%d: %d" % (i, i) for i in range(10000)])
    yield "header_line_lf_only", tpl().encode().replace(b"\r\n", b"\n")
    yield "header_line_cr_only", tpl().encode().replace(b"\r\n", b"\r")
    yield "empty_lines_first", b"\r\n" * 200 + tpl().encode()
    yield "request_line_only", b"INVITE sip:a@b SIP/2.0\r\n\r\n"
    yield "no_request_line", b"Via: SIP/2.0/UDP x\r\n\r\n"
    yield "binary_garbage", bytes(random.Random(7).getrandbits(8) for _ in range(4000))
    yield "response_unsolicited", (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;"
                                   b"branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>"
                                   b";tag=2\r\nCall-ID: r1\r\nCSeq: 1 INVITE\r\n"
                                   b"Content-Length: 0\r\n\r\n")
    yield "status_code_huge", b"SIP/2.0 99999999999 OK\r\nContent-Length: 0\r\n\r\n"
    for method in ("OPTIONS", "REGISTER", "BYE", "CANCEL", "ACK", "INFO", "REFER", "NOTIFY",
                   "MESSAGE", "SUBSCRIBE", "UPDATE", "PRACK", "PUBLISH", "FOO", "a" * 4096):
        t = tpl()
        t.f["method"] = method
        t.f["cseq_method"] = method
        yield "method_%s" % method[:16], t.encode()


def stream_cases(host, port, user):
    """Byte streams only a connection-oriented transport has: each item is a list of writes."""
    n = 200000

    def msg(clen=None, body=None, extra=()):
        nonlocal n
        n += 1
        t = Template(host, port, user, n, "TCP")
        if clen is not None:
            t.content_length = clen
        return t.encode(list(extra), body)

    good = msg()
    # Pipelined: several requests in one write, some with lengths that cut into the next.
    yield "pipeline4", [good + msg() + msg() + msg()]
    yield "pipeline_short_len", [msg(clen="5") + msg() + msg()]
    yield "pipeline_long_len", [msg(clen="2000") + msg() + msg()]
    yield "pipeline_zero_len", [msg(clen="0") + msg()]
    yield "pipeline_dup_len", [msg(clen=False, extra=("Content-Length: 3", "Content-Length: 900"))
                               + msg() + msg()]
    yield "pipeline_100", [b"".join(msg() for _ in range(100))]
    # A body length near 2^32 in a request pipelined behind another one (in the same write):
    # the length that crashed sofia-sip's parser before the signaler bounded every message.
    for clen in ("4294967295", "4294967294", "4294967000", "3000000000", "2147483648",
                 "2147483647", "16777216"):
        yield "pipeline_huge_len_%s" % clen, [good + msg(clen=clen) + b"x" * 100]
        yield "pipeline_huge_len_%s_then_more" % clen, [msg() + msg(clen=clen) + msg() + msg()]
    # Split: the header in one write, the body later; the body in many small writes.
    m = msg()
    cut = m.index(b"\r\n\r\n") + 4
    yield "split_head_body", [m[:cut], m[cut:]]
    yield "split_bytewise", [m[i:i + 1] for i in range(0, len(m))][:400] + [m[400:]]
    yield "split_in_crlf", [m[:cut - 2], m[cut - 2:cut - 1], m[cut - 1:]]
    # A body announced larger than what follows, then more requests: the parser waits for bytes
    # that are the next requests.
    for clen in ("1000", "4096", "65536", "65537", "131072", "1048576", "16777216",
                 "2147483647", "4294967295"):
        yield "announced_%s_then_requests" % clen, [msg(clen=clen), msg(), msg(), msg()]
    # Bodies with a huge length, then a flood of bytes.
    for clen in ("65536", "300000", "2000000"):
        yield "announced_%s_flood" % clen, [msg(clen=clen)] + [b"x" * 16384] * 20
    # Header blocks that never end.
    yield "endless_header", [b"INVITE sip:a@b SIP/2.0\r\nVia: "] + [b"a" * 8192] * 40
    yield "endless_headers", [b"INVITE sip:a@b SIP/2.0\r\n"] + [b"X-A: b\r\n" * 1000] * 40
    # Keep-alives (CRLF) between and inside requests (RFC 5626 pings).
    yield "crlf_pings", [b"\r\n\r\n", good, b"\r\n\r\n", msg(), b"\r\n"]
    yield "crlf_flood", [b"\r\n" * 50000]


def build_set(host, port, user, limit):
    """All datagram cases and all stream cases, in a fixed order."""
    dgrams = list(field_cases(host, port, user, "UDP")) + list(
        structure_cases(host, port, user, "UDP"))
    streams = [(name, [data]) for name, data in field_cases(host, port, user, "TCP")]
    streams += [(name, [data]) for name, data in structure_cases(host, port, user, "TCP")]
    streams += list(stream_cases(host, port, user))
    if limit:
        dgrams = dgrams[:limit]
        streams = streams[:limit]
    return dgrams, streams


class Replies:
    def __init__(self):
        self.classes = [0] * 7
        self.partial = b""

    def feed(self, data):
        self.partial = (self.partial + data)[-65536:]
        while True:
            i = self.partial.find(b"SIP/2.0 ")
            if i < 0 or len(self.partial) < i + 11:
                return
            code = self.partial[i + 8:i + 11]
            if code.isdigit() and 1 <= int(code) // 100 <= 6:
                self.classes[int(code) // 100] += 1
            self.partial = self.partial[i + 11:]


def send_udp(host, port, cases, gap, replies):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    sent = 0
    for _, data in cases:
        if len(data) > 65000:
            data = data[:65000]
        try:
            s.sendto(data, (host, port))
            sent += 1
        except OSError:
            pass
        drain_udp(s, replies)
        if gap:
            time.sleep(gap)
    end = time.time() + 0.5
    while time.time() < end:
        drain_udp(s, replies)
        time.sleep(0.02)
    s.close()
    return sent


def drain_udp(s, replies):
    while True:
        try:
            data = s.recv(70000)
        except (BlockingIOError, OSError):
            return
        replies.feed(data)


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = None
        self.opened = 0

    def ensure(self):
        if self.sock is None:
            s = socket.create_connection((self.host, self.port), timeout=5)
            s.setblocking(False)
            self.sock = s
            self.opened += 1
        return self.sock

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def write_all(conn, data, replies, deadline):
    """Writes data on conn; False when the peer closed it (the rest is dropped)."""
    s = conn.ensure()
    view = memoryview(data)
    while view:
        if time.time() > deadline:
            return False
        r, w, _ = select.select([s], [s], [], 0.2)
        if r:
            try:
                got = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                got = None
            except OSError:
                return False
            if got == b"":
                return False
            if got:
                replies.feed(got)
        if w:
            try:
                k = s.send(view)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return False
            view = view[k:]
    return True


def send_tcp(host, port, cases, nconn, gap, replies, fresh=False):
    conns = [Conn(host, port) for _ in range(nconn)]
    sent = closed = 0
    for i, (_, writes) in enumerate(cases):
        c = conns[i % nconn]
        if fresh:
            c.close()
        for attempt in (0, 1):
            ok = True
            for k, data in enumerate(writes):
                try:
                    ok = write_all(c, data, replies, time.time() + 5)
                except OSError:
                    ok = False
                if not ok:
                    break
            if ok:
                break
            closed += 1
            c.close()
            if k > 0:
                break  # the peer took part of this case and closed: that is its answer
            # closed before this case began (by the case before it): once more, afresh
        if ok:
            sent += 1
        if gap:
            time.sleep(gap)
    end = time.time() + 1.0
    while time.time() < end:
        socks = [c.sock for c in conns if c.sock is not None]
        if not socks:
            break
        r, _, _ = select.select(socks, [], [], 0.1)
        for s in r:
            try:
                got = s.recv(65536)
            except OSError:
                got = b""
            if got:
                replies.feed(got)
            else:
                for c in conns:
                    if c.sock is s:
                        c.close()
    opened = sum(c.opened for c in conns)
    for c in conns:
        c.close()
    return sent, closed, opened


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--transport", choices=("udp", "tcp", "both"), default="both")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--fresh", action="store_true",
                    help="over TCP, each case on a connection of its own")
    ap.add_argument("--gap-ms", type=float, default=2.0)
    ap.add_argument("--limit", type=int, default=0, help="send only the first N cases")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--user", default="protos")
    ap.add_argument("--only", default="", help="only the cases whose name matches this regex")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    random.seed(a.seed)
    dgrams, streams = build_set(a.host, a.port, a.user, a.limit)
    if a.only:
        dgrams = [c for c in dgrams if re.search(a.only, c[0])]
        streams = [c for c in streams if re.search(a.only, c[0])]
    if a.list:
        for name, data in dgrams:
            print("dgram %-48s %d" % (name, len(data)))
        for name, writes in streams:
            print("stream %-47s %d" % (name, sum(len(w) for w in writes)))
        print("%d datagram cases, %d stream cases" % (len(dgrams), len(streams)))
        return 0
    replies = Replies()
    gap = a.gap_ms / 1000.0
    udp = tcp = closed = opened = 0
    try:
        if a.transport in ("udp", "both"):
            udp = send_udp(a.host, a.port, dgrams, gap, replies)
        if a.transport in ("tcp", "both"):
            tcp, closed, opened = send_tcp(a.host, a.port, streams, max(1, a.connections), gap,
                                           replies, a.fresh)
    except OSError as e:
        print("sip_protos: %s:%d: %s" % (a.host, a.port, e))
        return 1
    c = replies.classes
    print("sent %d (udp %d, tcp %d) on %d connections; replies 1xx/2xx/3xx/4xx/5xx/6xx "
          "%d/%d/%d/%d/%d/%d; closed %d" % (udp + tcp, udp, tcp, opened, c[1], c[2], c[3], c[4],
                                             c[5], c[6], closed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""rtmp_bad.py - a raw-socket RTMP client that crafts bad input, plus a well-behaved player.

Bad modes send one kind of hostile input and then wait for the server to close the connection:
they exit 0 when it did (EOF or reset) within --timeout seconds, 1 otherwise, and print what
happened. The first line printed is always "local <ip>:<port>", the client side of the TCP
connection, so a test can find the server's log lines about this very connection.

  truncated-handshake  C0 + half of C1, then silence (server must time the handshake out)
  garbage              valid handshake, then --bytes (4096) random bytes
  big-chunk-size       valid handshake, Set Chunk Size 0x7FFFFFFF
  zero-chunk-size      valid handshake, Set Chunk Size 0
  huge-message         valid handshake, Set Chunk Size 4096, then a command message whose header
                       announces 0xFFFFFF bytes (the largest the 24-bit field expresses) with an
                       extended timestamp of 0xFFFFFFFF; --fmt 1 announces it in a type-1 header
                       after a small complete message on the same chunk stream
  deep-amf             valid handshake, connect whose argument nests --depth (10000) AMF objects
  csid-flood           valid handshake, partial messages on --count (5000) distinct chunk
                       stream ids, 3-byte basic headers above 319 (up to 65599)
  rtmpe                C0 = 6 (RTMPE, encrypted) with a random C1
  policy               "<policy-file-request/>\\0": expects cross-domain policy XML + \\0, then close
  tls-garbage          (for an RTMPS port, without --tls) a TLS handshake record header followed by
                       --bytes random bytes

Well-behaved modes:
  good        handshake, connect, createStream, play --stream; counts audio messages and bytes
              per second for --duration seconds; exits 0 when audio arrived and no gap between
              arrivals (including the tail up to the end of the window) exceeded --max-gap
  idle        handshake, connect; then sends nothing: exits 0 when the server closes the
              connection within --timeout and not before --min-elapsed seconds
  conn-limit  opens --count connections one after the other, each completing the handshake;
              exits 0 when the first --limit stay open and the rest are closed by the server
  burst       handshake, connect, Set Chunk Size 60000, then --count data messages of --bytes
              bytes and a ping request in one write: exits 0 when the ping is answered (the
              server read the whole burst, nothing left waiting in its buffers)
  publish     handshake, connect --app, createStream, publish --stream, Set Chunk Size 60000;
              then --count audio messages of --bytes bytes (the FLV tag byte --audio-byte, e.g.
              0x82 G.711 u-law mono, 0x83 stereo, 0xB2 Speex; the rest 0xff), timestamps --step
              ms apart from 0, in one write; prints every onStatus as "onStatus LEVEL CODE:
              DESCRIPTION"; exits 0 when one of level "error" arrives within --timeout seconds
              (with --expect-no-error: when none does), 1 otherwise

--tls speaks TLS (RTMPS) under any mode, without checking the server's certificate.

With --expect-open a bad mode succeeds only if the server keeps the connection open for --timeout
seconds: for input exactly at a limit (e.g. deep-amf --depth 32, csid-flood --count 64,
big-chunk-size --size 65536).

Only the Python standard library is used. Every wait is bounded.
"""
import argparse
import os
import random
import select
import socket
import ssl
import struct
import sys
import time

HANDSHAKE_SIZE = 1536
DEFAULT_CHUNK = 128
MAX_IN_MESSAGE = 16 * 1024 * 1024
MAX_IN_CHUNK = 16 * 1024 * 1024

MSG_SET_CHUNK_SIZE = 1
MSG_ACK = 3
MSG_USER_CONTROL = 4
MSG_WINDOW_ACK = 5
MSG_PEER_BW = 6
MSG_AUDIO = 8
MSG_DATA_AMF0 = 18
MSG_VIDEO = 9
MSG_AMF3_COMMAND = 17
MSG_AMF0_COMMAND = 20


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class Timeout(Exception):
    """A bounded wait expired."""


def log(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------- AMF0

class Obj(dict):
    """An AMF0 object (keys keep insertion order)."""


class Ecma(dict):
    """An AMF0 ECMA array."""


class Null:
    def __repr__(self):
        return "null"


NULL = Null()


def amf_str(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def amf_encode(v):
    if v is None or isinstance(v, Null):
        return b"\x05"
    if isinstance(v, bool):
        return b"\x01" + (b"\x01" if v else b"\x00")
    if isinstance(v, (int, float)):
        return b"\x00" + struct.pack(">d", float(v))
    if isinstance(v, str):
        b = v.encode()
        if len(b) > 0xFFFF:
            return b"\x0c" + struct.pack(">I", len(b)) + b
        return b"\x02" + struct.pack(">H", len(b)) + b
    if isinstance(v, dict):
        out = [b"\x08" + struct.pack(">I", len(v))] if isinstance(v, Ecma) else [b"\x03"]
        for k, x in v.items():
            out.append(amf_str(k) + amf_encode(x))
        out.append(b"\x00\x00\x09")
        return b"".join(out)
    if isinstance(v, (list, tuple)):
        return b"\x0a" + struct.pack(">I", len(v)) + b"".join(amf_encode(x) for x in v)
    raise TypeError("cannot encode %r" % (v,))


class AmfError(Exception):
    pass


def amf_decode(data, pos=0, depth=0):
    """Decodes one AMF0 value at data[pos:]; returns (value, new_pos). Bounded nesting."""
    if depth > 64:
        raise AmfError("nesting too deep")
    if pos >= len(data):
        raise AmfError("truncated")
    t = data[pos]
    pos += 1

    def need(n):
        if pos + n > len(data):
            raise AmfError("truncated")

    if t == 0x00:
        need(8)
        return struct.unpack_from(">d", data, pos)[0], pos + 8
    if t == 0x01:
        need(1)
        return data[pos] != 0, pos + 1
    if t == 0x02:
        need(2)
        n = struct.unpack_from(">H", data, pos)[0]
        pos += 2
        need(n)
        return data[pos:pos + n].decode("utf-8", "replace"), pos + n
    if t == 0x0C:
        need(4)
        n = struct.unpack_from(">I", data, pos)[0]
        pos += 4
        need(n)
        return data[pos:pos + n].decode("utf-8", "replace"), pos + n
    if t in (0x05, 0x06):
        return NULL, pos
    if t in (0x03, 0x08):
        o = Obj() if t == 0x03 else Ecma()
        if t == 0x08:
            need(4)
            pos += 4
        while True:
            need(3)
            n = struct.unpack_from(">H", data, pos)[0]
            if n == 0 and data[pos + 2] == 0x09:
                return o, pos + 3
            pos += 2
            need(n)
            k = data[pos:pos + n].decode("utf-8", "replace")
            pos += n
            o[k], pos = amf_decode(data, pos, depth + 1)
            if len(o) > 4096:
                raise AmfError("too many properties")
    if t == 0x0A:
        need(4)
        n = struct.unpack_from(">I", data, pos)[0]
        pos += 4
        if n > 4096:
            raise AmfError("array too long")
        out = []
        for _ in range(n):
            v, pos = amf_decode(data, pos, depth + 1)
            out.append(v)
        return out, pos
    if t == 0x0B:
        need(10)
        return ("date", struct.unpack_from(">d", data, pos)[0]), pos + 10
    raise AmfError("unsupported AMF0 type 0x%02x" % t)


def amf_decode_all(data):
    vals, pos = [], 0
    while pos < len(data):
        v, pos = amf_decode(data, pos)
        vals.append(v)
    return vals


def amf_fmt(v):
    if isinstance(v, Null):
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "%d" % v if v == int(v) and abs(v) < 1e15 else repr(v)
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, dict):
        inner = ",".join("%s:%s" % (k, amf_fmt(x)) for k, x in v.items())
        return ("ecma{%s}" if isinstance(v, Ecma) else "{%s}") % inner
    if isinstance(v, list):
        return "[%s]" % ",".join(amf_fmt(x) for x in v)
    return repr(v)


# ---------------------------------------------------------------------------- chunk stream

def basic_header(fmt, csid):
    """1, 2 or 3 byte chunk basic header for chunk stream id 2..65599."""
    if 2 <= csid <= 63:
        return bytes([(fmt << 6) | csid])
    if 64 <= csid <= 319:
        return bytes([fmt << 6, csid - 64])
    if 320 <= csid <= 65599:
        return bytes([(fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])
    raise ValueError("csid %d out of range" % csid)


def message_header0(ts, length, msg_type, stream_id):
    """Type-0 message header (+ extended timestamp when needed)."""
    ext = ts >= 0xFFFFFF
    h = struct.pack(">I", min(ts, 0xFFFFFF))[1:] + struct.pack(">I", length)[1:]
    h += bytes([msg_type]) + struct.pack("<I", stream_id)
    if ext:
        h += struct.pack(">I", ts)
    return h


def chunk_message(csid, msg_type, stream_id, payload, chunk_size, ts=0, length=None):
    """Serialises one message into chunks: a type-0 chunk, then type-3 continuations."""
    if length is None:
        length = len(payload)
    ext = ts >= 0xFFFFFF
    out = [basic_header(0, csid) + message_header0(ts, length, msg_type, stream_id)]
    first = True
    for off in range(0, max(len(payload), 1), chunk_size):
        if not first:
            out.append(basic_header(3, csid) + (struct.pack(">I", ts) if ext else b""))
        out.append(payload[off:off + chunk_size])
        first = False
    return b"".join(out)


class RtmpConn:
    """A blocking client connection with a simple handshake and a chunk reader/writer."""

    def __init__(self, host, port, timeout=5.0, tls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            try:
                self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
            except (ssl.SSLError, OSError) as e:
                self.sock.close()
                raise Closed("TLS handshake: %s" % e)
        self.rbuf = bytearray()
        self.out_chunk = DEFAULT_CHUNK
        self.in_chunk = DEFAULT_CHUNK
        self.streams = {}
        self.bytes_in = 0
        self.acked = 0
        self.window = 0
        self.txid = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
            raise Closed("send: %s" % e.__class__.__name__)
        except socket.timeout:
            raise Timeout("send blocked")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("timeout")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("timeout")
        except (ConnectionResetError, ssl.SSLError) as e:
            raise Closed("reset (%s)" % e.__class__.__name__)
        if not data:
            raise Closed("EOF")
        self.rbuf += data
        self.bytes_in += len(data)

    def recv_exact(self, n, deadline):
        while len(self.rbuf) < n:
            self._fill(deadline)
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def handshake(self, deadline, version=3):
        c1 = struct.pack(">II", int(time.monotonic() * 1000) & 0xFFFFFFFF, 0)
        c1 += os.urandom(HANDSHAKE_SIZE - 8)
        self.send(bytes([version]) + c1)
        s0 = self.recv_exact(1, deadline)
        if s0[0] != 3:
            raise AmfError("S0 version %d" % s0[0])
        s1 = self.recv_exact(HANDSHAKE_SIZE, deadline)
        self.send(s1)  # C2 echoes S1
        s2 = self.recv_exact(HANDSHAKE_SIZE, deadline)
        if s2[8:] != c1[8:]:
            log("note: S2 does not echo C1 (server used another handshake variant)")

    def send_msg(self, csid, msg_type, stream_id, payload, ts=0):
        self.send(chunk_message(csid, msg_type, stream_id, payload, self.out_chunk, ts))

    def set_chunk_size(self, size):
        self.send_msg(2, MSG_SET_CHUNK_SIZE, 0, struct.pack(">I", size))
        self.out_chunk = size

    def command(self, name, args, stream_id=0, csid=3, txid=None):
        if txid is None:
            self.txid += 1
            txid = self.txid
        body = amf_encode(name) + amf_encode(txid) + b"".join(amf_encode(a) for a in args)
        self.send_msg(csid, MSG_AMF0_COMMAND, stream_id, body)
        return txid

    def read_msg(self, deadline):
        """Reads chunks until one message completes; returns (type, stream_id, ts, payload)."""
        while True:
            b0 = self.recv_exact(1, deadline)[0]
            fmt, csid = b0 >> 6, b0 & 0x3F
            if csid == 0:
                csid = 64 + self.recv_exact(1, deadline)[0]
            elif csid == 1:
                b = self.recv_exact(2, deadline)
                csid = 64 + b[0] + 256 * b[1]
            st = self.streams.get(csid)
            if st is None:
                if fmt != 0:
                    raise AmfError("chunk fmt %d on new csid %d" % (fmt, csid))
                if len(self.streams) >= 1024:
                    raise AmfError("too many chunk streams from the server")
                st = self.streams[csid] = {"ts": 0, "delta": 0, "len": 0, "type": 0,
                                           "sid": 0, "buf": bytearray(), "ext": False}
            if fmt <= 2:
                h = self.recv_exact((11, 7, 3)[fmt], deadline)
                tsf = int.from_bytes(h[0:3], "big")
                if fmt <= 1:
                    st["len"] = int.from_bytes(h[3:6], "big")
                    st["type"] = h[6]
                if fmt == 0:
                    st["sid"] = struct.unpack("<I", h[7:11])[0]
                st["ext"] = tsf == 0xFFFFFF
                if st["ext"]:
                    tsf = struct.unpack(">I", self.recv_exact(4, deadline))[0]
                if not st["buf"]:
                    if fmt == 0:
                        st["ts"] = tsf
                        st["delta"] = 0
                    else:
                        st["delta"] = tsf
                        st["ts"] = (st["ts"] + tsf) & 0xFFFFFFFF
            else:
                if st["ext"]:
                    self.recv_exact(4, deadline)
                if not st["buf"] and st["delta"]:
                    st["ts"] = (st["ts"] + st["delta"]) & 0xFFFFFFFF
            if st["len"] > MAX_IN_MESSAGE:
                raise AmfError("server announced a %d-byte message" % st["len"])
            n = min(self.in_chunk, st["len"] - len(st["buf"]))
            st["buf"] += self.recv_exact(n, deadline)
            self._maybe_ack()
            if len(st["buf"]) >= st["len"]:
                payload = bytes(st["buf"])
                st["buf"] = bytearray()
                msg = (st["type"], st["sid"], st["ts"], payload)
                if self._control(msg):
                    continue
                return msg

    def _maybe_ack(self):
        if self.window and self.bytes_in - self.acked >= self.window:
            self.acked = self.bytes_in
            self.send_msg(2, MSG_ACK, 0, struct.pack(">I", self.bytes_in & 0xFFFFFFFF))

    def _control(self, msg):
        """Handles protocol control messages; returns True when consumed."""
        t, _, _, p = msg
        if t == MSG_SET_CHUNK_SIZE and len(p) >= 4:
            size = struct.unpack(">I", p[:4])[0] & 0x7FFFFFFF
            if not 1 <= size <= MAX_IN_CHUNK:
                raise AmfError("server set chunk size %d" % size)
            self.in_chunk = size
            return True
        if t == MSG_WINDOW_ACK and len(p) >= 4:
            self.window = struct.unpack(">I", p[:4])[0]
            return True
        if t == MSG_USER_CONTROL and len(p) >= 6 and struct.unpack(">H", p[:2])[0] == 6:
            self.send_msg(2, MSG_USER_CONTROL, 0, struct.pack(">H", 7) + p[2:6])
            return True
        return t in (MSG_ACK, MSG_PEER_BW)

    def wait_command(self, deadline, txid=None, names=None):
        """Reads until a command with @txid (or a name in @names) arrives; returns its values."""
        while True:
            t, _, _, p = self.read_msg(deadline)
            if t == MSG_AMF3_COMMAND:
                p = p[1:]
            elif t != MSG_AMF0_COMMAND:
                continue
            vals = amf_decode_all(p)
            if len(vals) < 2:
                continue
            if (txid is not None and vals[0] in ("_result", "_error") and vals[1] == txid) or \
                    (names is not None and vals[0] in names):
                return vals

    def wait_closed(self, deadline):
        """Discards input until the peer closes. Returns (closed, how, elapsed, bytes)."""
        t0 = time.monotonic()
        got = len(self.rbuf)
        self.rbuf.clear()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, "still open", time.monotonic() - t0, got
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                return True, "reset", time.monotonic() - t0, got
            if not data:
                return True, "EOF", time.monotonic() - t0, got
            got += len(data)

    def connect_app(self, host, port, app, deadline, extra_args=()):
        props = Obj(app=app, flashVer="LNX 11,2,202,235", tcUrl="rtmp://%s:%d/%s" % (host, port, app),
                    fpad=False, capabilities=239.0, audioCodecs=3575.0, videoCodecs=252.0,
                    videoFunction=1.0, objectEncoding=0.0)
        txid = self.command("connect", [props] + list(extra_args))
        return self.wait_command(deadline, txid=txid)


# ---------------------------------------------------------------------------- bad modes

def finish_bad(conn, args, what):
    """Waits for the server to close after sending @what; returns the exit status."""
    closed, how, elapsed, got = conn.wait_closed(time.monotonic() + args.timeout)
    if args.expect_open:
        if closed:
            log("closed: %s after %.2f s (%s) but --expect-open" % (how, elapsed, what))
            return 1
        log("still open after %.1f s as expected (%s; %d bytes received)" % (args.timeout, what, got))
        return 0
    if closed:
        log("closed: %s after %.2f s (%s; %d bytes received)" % (how, elapsed, what, got))
        log("elapsed=%.2f" % elapsed)
        return 0
    log("NOT closed within %.1f s (%s; %d bytes received)" % (args.timeout, what, got))
    return 1


def open_conn(args):
    conn = RtmpConn(args.host, args.port, timeout=args.timeout, tls=args.tls)
    log("local %s" % conn.local)
    return conn


def run_bad(args, send):
    """Opens a connection, lets @send write the bad input, then waits for the close."""
    try:
        conn = open_conn(args)
    except Closed as e:
        log("closed: %s" % e)
        log("elapsed=0.00")
        return 1 if args.expect_open else 0
    try:
        what = send(conn)
    except Closed as e:
        log("closed: while sending (%s)" % e)
        log("elapsed=0.00")
        conn.close()
        return 1 if args.expect_open else 0
    except (Timeout, AmfError) as e:
        log("failed while sending: %s" % e)
        conn.close()
        return 1
    try:
        return finish_bad(conn, args, what)
    finally:
        conn.close()


def mode_truncated_handshake(args):
    def send(conn):
        c1 = struct.pack(">II", 0, 0) + os.urandom(HANDSHAKE_SIZE - 8)
        conn.send(b"\x03" + c1[:HANDSHAKE_SIZE // 2])
        return "sent C0 + %d bytes of C1" % (HANDSHAKE_SIZE // 2)
    return run_bad(args, send)


def mode_garbage(args):
    def send(conn):
        conn.handshake(time.monotonic() + args.timeout)
        rnd = random.Random(args.seed)
        data = bytes(rnd.getrandbits(8) for _ in range(args.bytes))
        conn.send(data)
        return "sent %d random bytes (seed %d, first byte 0x%02x)" % (args.bytes, args.seed, data[0])
    return run_bad(args, send)


def chunk_size_mode(default):
    def mode(args):
        size = default if args.size is None else args.size

        def send(conn):
            conn.handshake(time.monotonic() + args.timeout)
            conn.send(chunk_message(2, MSG_SET_CHUNK_SIZE, 0, struct.pack(">I", size), DEFAULT_CHUNK))
            return "sent Set Chunk Size %d" % size
        return run_bad(args, send)
    return mode


def mode_huge_message(args):
    def send(conn):
        conn.handshake(time.monotonic() + args.timeout)
        conn.set_chunk_size(4096)
        length = 0xFFFFFF
        body = (amf_encode("connect") + amf_encode(1) + b"\x03").ljust(4096, b"A")
        if args.fmt == 0:
            hdr = basic_header(0, 3) + message_header0(0xFFFFFFFF, length, MSG_AMF0_COMMAND, 0)
        else:
            # A complete 1-byte audio message opens chunk stream 5; then a type-1 header (no
            # stream id) on it announces the huge length with an extended timestamp delta.
            conn.send(chunk_message(5, MSG_AUDIO, 0, b"\xb2", conn.out_chunk))
            hdr = basic_header(1, 5) + b"\xff\xff\xff" + struct.pack(">I", length)[1:]
            hdr += bytes([MSG_AMF0_COMMAND]) + struct.pack(">I", 0xFFFFFFFF)
        conn.send(hdr + body)
        return "sent a type-%d header announcing %d bytes (ext timestamp 0xFFFFFFFF)" % (
            args.fmt, length)
    return run_bad(args, send)


def mode_deep_amf(args):
    def send(conn):
        conn.handshake(time.monotonic() + args.timeout)
        conn.set_chunk_size(4096)
        depth = args.depth
        # A valid connect object ({app:"echo", tcUrl:...}) whose property "a" holds a chain of
        # objects, @depth objects deep in all: below the server's limit this is a good connect.
        head = amf_encode(Obj(app=args.app, tcUrl="rtmp://%s:%d/%s" % (args.host, args.port, args.app)))
        nested = head[:-3] + (amf_str("a") + b"\x03") * (depth - 1) + b"\x00\x00\x09" * depth
        body = amf_encode("connect") + amf_encode(1) + nested
        conn.send(chunk_message(3, MSG_AMF0_COMMAND, 0, body, conn.out_chunk))
        return "sent connect with AMF objects nested %d deep (%d bytes)" % (depth, len(body))
    return run_bad(args, send)


def mode_csid_flood(args):
    def send(conn):
        conn.handshake(time.monotonic() + args.timeout)
        n = 0
        batch = []
        for csid in range(64, min(64 + args.count, 65600)):
            # A message of 200 bytes of which only the first 128-byte chunk is sent: the server
            # has to keep state for every one of these chunk streams.
            batch.append(basic_header(0, csid) + message_header0(0, 200, MSG_AUDIO, 1) + b"\xb2" * 128)
            n += 1
            if len(batch) == 256:
                conn.send(b"".join(batch))
                batch = []
        if batch:
            conn.send(b"".join(batch))
        return "sent partial messages on %d chunk stream ids (64..%d)" % (n, 63 + n)
    return run_bad(args, send)


def mode_rtmpe(args):
    def send(conn):
        conn.send(b"\x06" + os.urandom(HANDSHAKE_SIZE))
        return "sent C0=6 (RTMPE) + C1"
    return run_bad(args, send)


def mode_tls_garbage(args):
    def send(conn):
        rnd = random.Random(args.seed)
        body = bytes(rnd.getrandbits(8) for _ in range(args.bytes))
        conn.send(b"\x16\x03\x01" + struct.pack(">H", min(len(body), 0x4000)) + body)
        return "sent a TLS record header and %d random bytes" % args.bytes
    return run_bad(args, send)


def mode_policy(args):
    conn = open_conn(args)
    deadline = time.monotonic() + args.timeout
    data = bytearray()
    how = "still open"
    try:
        conn.send(b"<policy-file-request/>\x00")
        while time.monotonic() < deadline:
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                d = conn.sock.recv(65536)
            except socket.timeout:
                continue
            if not d:
                how = "EOF"
                break
            data += d
    except (Closed, ConnectionResetError):
        how = "reset"
    finally:
        conn.close()
    text = bytes(data)
    log("received %d bytes then %s: %r" % (len(text), how, text[:300]))
    ok = b"<cross-domain-policy" in text and text.endswith(b"\x00") and how != "still open"
    log("policy: %s" % ("ok" if ok else "BAD (want <cross-domain-policy ...> + \\0 then close)"))
    return 0 if ok else 1


# ---------------------------------------------------------------------------- good modes

def mode_burst(args):
    conn = open_conn(args)
    stamp = 0x5A5A1234
    try:
        deadline = time.monotonic() + args.timeout
        conn.handshake(deadline)
        reply = conn.connect_app(args.host, args.port, args.app, deadline)
        if reply[0] != "_result":
            log("connect refused: %s" % " ".join(amf_fmt(v) for v in reply))
            return 1
        conn.set_chunk_size(60000)
        rnd = random.Random(args.seed)
        body = bytes(rnd.getrandbits(8) for _ in range(args.bytes))
        data = b"".join(chunk_message(4, MSG_DATA_AMF0, 0, body, conn.out_chunk)
                        for _ in range(args.count))
        data += chunk_message(2, MSG_USER_CONTROL, 0, struct.pack(">HI", 6, stamp), conn.out_chunk)
        t0 = time.monotonic()
        conn.send(data)
        while True:
            t, _, _, p = conn.read_msg(deadline)
            if t == MSG_USER_CONTROL and len(p) >= 6 and struct.unpack(">HI", p[:6]) == (7, stamp):
                break
    except (Closed, Timeout, AmfError) as e:
        log("burst of %d x %d bytes: no answer to the ping that followed it: %s"
            % (args.count, args.bytes, e))
        return 1
    finally:
        conn.close()
    log("burst of %d x %d bytes: ping answered after %.2f s" % (args.count, args.bytes,
                                                                 time.monotonic() - t0))
    return 0


def mode_publish(args):
    conn = open_conn(args)
    deadline = time.monotonic() + args.timeout
    errors = []
    try:
        conn.handshake(deadline)
        reply = conn.connect_app(args.host, args.port, args.app, deadline)
        if reply[0] != "_result":
            log("connect refused: %s" % " ".join(amf_fmt(v) for v in reply))
            return 1
        txid = conn.command("createStream", [NULL])
        reply = conn.wait_command(deadline, txid=txid)
        if reply[0] != "_result" or len(reply) < 4 or not isinstance(reply[3], float):
            log("createStream refused: %s" % " ".join(amf_fmt(v) for v in reply))
            return 1
        sid = int(reply[3])
        conn.command("publish", [NULL, args.stream, "live"], stream_id=sid, csid=8, txid=0)

        def status(vals):
            info = vals[3] if len(vals) >= 4 and isinstance(vals[3], dict) else {}
            log("onStatus %s %s: %s" % (info.get("level"), info.get("code"),
                                         info.get("description")))
            if info.get("level") == "error":
                errors.append(info)
            return info.get("code")

        code = status(conn.wait_command(deadline, names=("onStatus",)))
        if code != "NetStream.Publish.Start":
            return 0 if errors and not args.expect_no_error else 1
        conn.set_chunk_size(60000)
        body = bytes([args.audio_byte]) + b"\xff" * max(args.bytes - 1, 0)
        conn.send(b"".join(chunk_message(4, MSG_AUDIO, sid, body, conn.out_chunk, ts=i * args.step)
                           for i in range(args.count)))
        log("sent %d audio messages of %d bytes (tag byte 0x%02x), %d ms apart" %
            (args.count, len(body), args.audio_byte, args.step))
        while not errors:
            status(conn.wait_command(deadline, names=("onStatus",)))
    except Timeout:
        pass
    except (Closed, AmfError) as e:
        log("publish: %s" % e)
        return 1
    finally:
        conn.close()
    if args.expect_no_error:
        log("publish: %s" % ("no error, as expected" if not errors else "an error, none expected"))
        return 0 if not errors else 1
    log("publish: %s" % ("refused" if errors else "no error within %.1f s" % args.timeout))
    return 0 if errors else 1


def mode_idle(args):
    conn = open_conn(args)
    try:
        deadline = time.monotonic() + args.timeout
        conn.handshake(deadline)
        reply = conn.connect_app(args.host, args.port, args.app, deadline)
        log("connect: %s" % " ".join(amf_fmt(v) for v in reply))
        if reply[0] != "_result":
            return 1
        t0 = time.monotonic()
        closed, how, _, got = conn.wait_closed(t0 + args.timeout)
        elapsed = time.monotonic() - t0
    except (Closed, Timeout, AmfError) as e:
        log("failed before idling: %s" % e)
        return 1
    finally:
        conn.close()
    log("elapsed=%.2f" % elapsed)
    if not closed:
        log("NOT closed within %.1f s of idling" % args.timeout)
        return 1
    if elapsed < args.min_elapsed:
        log("closed too early: %s after %.2f s (< %.2f)" % (how, elapsed, args.min_elapsed))
        return 1
    log("closed: %s after %.2f s idle (%d bytes received meanwhile)" % (how, elapsed, got))
    return 0


def mode_conn_limit(args):
    conns = []
    states = []
    for i in range(args.count):
        try:
            c = RtmpConn(args.host, args.port, timeout=args.timeout, tls=args.tls)
        except OSError as e:
            states.append("refused (%s)" % e)
            conns.append(None)
            continue
        try:
            c.handshake(time.monotonic() + 2.0)
            states.append("open")
        except (Closed, AmfError) as e:
            states.append("closed (%s)" % e)
        except Timeout:
            states.append("no handshake reply")
        conns.append(c)
        log("conn %d local %s: %s" % (i + 1, c.local, states[-1]))
    time.sleep(args.settle)
    ok = True
    for i, c in enumerate(conns):
        if c is None:
            still = False
        elif states[i] != "open":
            still = False
        else:
            r, _, _ = select.select([c.sock], [], [], 0)
            still = True
            if r:
                try:
                    still = c.sock.recv(1, socket.MSG_PEEK) != b""
                except OSError:
                    still = False
        want = i < args.limit
        verdict = "ok" if still == want else "WRONG"
        if still != want:
            ok = False
        log("conn %d: %s after %.1f s (want %s) %s" % (i + 1, "open" if still else "closed",
                                                    args.settle, "open" if want else "closed",
                                                    verdict))
    for c in conns:
        if c:
            c.close()
    return 0 if ok else 1


def mode_good(args):
    conn = open_conn(args)
    deadline = time.monotonic() + args.timeout
    try:
        conn.handshake(deadline)
        reply = conn.connect_app(args.host, args.port, args.app, deadline)
        log("connect: %s" % " ".join(amf_fmt(v) for v in reply))
        if reply[0] != "_result":
            return 1
        txid = conn.command("createStream", [NULL])
        reply = conn.wait_command(deadline, txid=txid)
        log("createStream: %s" % " ".join(amf_fmt(v) for v in reply))
        if reply[0] != "_result" or len(reply) < 4 or not isinstance(reply[3], float):
            return 1
        sid = int(reply[3])
        conn.send_msg(2, MSG_USER_CONTROL, 0, struct.pack(">HII", 3, sid, 1000))
        conn.command("play", [NULL, args.stream, -1000.0], stream_id=sid, csid=8, txid=0)
    except (Closed, Timeout, AmfError) as e:
        log("setup failed: %s" % e)
        conn.close()
        return 1

    arrivals = []
    sizes = []
    statuses = []
    first_deadline = time.monotonic() + args.first_audio_timeout
    end = None
    why = "duration reached"
    try:
        while True:
            now = time.monotonic()
            limit = end if end is not None else first_deadline
            if now >= limit:
                if end is None:
                    why = "no audio within %.1f s" % args.first_audio_timeout
                break
            try:
                t, _, _, p = conn.read_msg(limit)
            except Timeout:
                continue
            if t == MSG_AUDIO:
                now = time.monotonic()
                if end is None:
                    end = now + args.duration
                    log("first audio after %.2f s" % (now - (first_deadline - args.first_audio_timeout)))
                arrivals.append(now)
                sizes.append(len(p))
            elif t in (MSG_AMF0_COMMAND, MSG_AMF3_COMMAND):
                vals = amf_decode_all(p[1:] if t == MSG_AMF3_COMMAND else p)
                if vals and vals[0] == "onStatus" and len(vals) >= 4 and isinstance(vals[3], dict):
                    statuses.append(vals[3].get("code"))
                    log("onStatus %s" % vals[3].get("code"))
    except Closed as e:
        why = "connection closed by the server (%s)" % e
    except AmfError as e:
        why = "protocol error: %s" % e
    finally:
        conn.close()

    if not arrivals:
        log("good: no audio received (%s)" % why)
        return 1
    t0 = arrivals[0]
    stop = end if why == "duration reached" else time.monotonic()
    secs = int(stop - t0 + 0.999)
    for s in range(secs):
        n = sum(1 for a in arrivals if s <= a - t0 < s + 1)
        b = sum(sz for a, sz in zip(arrivals, sizes) if s <= a - t0 < s + 1)
        log("sec %d audio_msgs %d bytes %d" % (s, n, b))
    gaps = [(b - a, a - t0) for a, b in zip(arrivals, arrivals[1:])]
    gaps.append((stop - arrivals[-1], arrivals[-1] - t0))
    max_gap, at = max(gaps)
    log("good: audio_msgs=%d bytes=%d span=%.1f max_gap=%.3f at=%.1f end=%s" %
        (len(arrivals), sum(sizes), stop - t0, max_gap, at, why))
    if why != "duration reached":
        return 1
    if max_gap > args.max_gap:
        log("good: gap of %.3f s > %.3f s" % (max_gap, args.max_gap))
        return 1
    return 0


MODES = {
    "truncated-handshake": mode_truncated_handshake,
    "garbage": mode_garbage,
    "big-chunk-size": chunk_size_mode(0x7FFFFFFF),
    "zero-chunk-size": chunk_size_mode(0),
    "huge-message": mode_huge_message,
    "deep-amf": mode_deep_amf,
    "csid-flood": mode_csid_flood,
    "rtmpe": mode_rtmpe,
    "policy": mode_policy,
    "tls-garbage": mode_tls_garbage,
    "burst": mode_burst,
    "publish": mode_publish,
    "good": mode_good,
    "idle": mode_idle,
    "conn-limit": mode_conn_limit,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the close")
    ap.add_argument("--seed", type=int, default=1, help="garbage: random seed")
    ap.add_argument("--bytes", type=int, default=4096,
                    help="garbage, tls-garbage: how many bytes; burst, publish: bytes a message")
    ap.add_argument("--depth", type=int, default=10000, help="deep-amf: nesting depth")
    ap.add_argument("--size", type=int, help="big-chunk-size: the chunk size to set")
    ap.add_argument("--expect-open", action="store_true",
                    help="bad modes: succeed when the server keeps the connection open (for input "
                         "exactly at a limit)")
    ap.add_argument("--fmt", type=int, choices=(0, 1), default=0,
                    help="huge-message: announce the length in a type-0 or a type-1 header")
    ap.add_argument("--count", type=int, default=5000,
                    help="csid-flood / conn-limit / burst / publish: how many")
    ap.add_argument("--limit", type=int, default=4, help="conn-limit: connections allowed")
    ap.add_argument("--settle", type=float, default=1.0, help="conn-limit: seconds before checking")
    ap.add_argument("--app", default="echo")
    ap.add_argument("--stream", default="good", help="good: stream name to play; publish: to publish")
    ap.add_argument("--duration", type=float, default=10.0, help="good: seconds to measure")
    ap.add_argument("--max-gap", type=float, default=2.0, help="good: largest allowed gap (s)")
    ap.add_argument("--first-audio-timeout", type=float, default=10.0)
    ap.add_argument("--min-elapsed", type=float, default=0.0, help="idle: earliest allowed close")
    ap.add_argument("--tls", action="store_true", help="speak RTMPS (TLS, certificate not checked)")
    ap.add_argument("--audio-byte", type=lambda v: int(v, 0), default=0x82,
                    help="publish: the FLV audio tag byte of every message")
    ap.add_argument("--step", type=int, default=128, help="publish: ms between timestamps")
    ap.add_argument("--expect-no-error", action="store_true",
                    help="publish: succeed when no onStatus error arrives within --timeout")
    args = ap.parse_args()
    try:
        return MODES[args.mode](args)
    except OSError as e:
        log("error: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main())

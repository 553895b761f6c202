#!/usr/bin/env python3
"""conn_flood.py - holds many idle TCP connections to a server, each from its own source address.

Opens --count connections to --host:--port, connection i bound to 127.<a>.<b>.<c> (the i-th
address after --first-source, skipping .0 and .255 in the last byte), so a per-address limit does
not hide what many peers cost. Each connection then sends --send:
  none       nothing (an idle peer that never starts the handshake)
  partial    C0 + half of C1 (a peer stalled inside the RTMP handshake)
  tls-hello  the first 100 bytes of a TLS ClientHello (a peer stalled inside the TLS handshake)

After --settle seconds it prints one line "held open=N closed=M failed=F" (closed: the server
closed them, e.g. at its handshake limit; failed: the connect itself failed), then holds the
connections until --hold seconds have passed since the start or a line arrives on stdin (or
stdin closes, with --hold 0), closes them all, and prints "released".

Exit status 0, or 1 when fewer than --min-open connections were open at the settle point.
Only the Python standard library is used; every wait is bounded.
"""
import argparse
import errno
import ipaddress
import os
import select
import socket
import struct
import sys
import time

HANDSHAKE_SIZE = 1536


def payload(kind):
    if kind == "partial":
        return b"\x03" + struct.pack(">II", 0, 0) + os.urandom(HANDSHAKE_SIZE // 2 - 8)
    if kind == "tls-hello":
        # TLS record header (handshake, TLS 1.0 record version, length 512) and the start of a
        # ClientHello: the server must wait for the rest.
        body = b"\x01\x00\x01\xfc\x03\x03" + os.urandom(32) + b"\x00"
        head = b"\x16\x03\x01\x02\x00"
        return (head + body + os.urandom(100))[:100]
    return b""


def sources(first, count):
    addr = int(ipaddress.IPv4Address(first))
    out = []
    while len(out) < count:
        if addr & 0xFF not in (0, 255):
            out.append(str(ipaddress.IPv4Address(addr)))
        addr += 1
    return out


def still_open(s):
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--first-source", default="127.1.0.1")
    ap.add_argument("--same-source", action="store_true",
                    help="every connection from --first-source (a per-address limit applies)")
    ap.add_argument("--send", choices=("none", "partial", "tls-hello"), default="none")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds from the start to hold; 0: until a line or EOF on stdin")
    ap.add_argument("--min-open", type=int, default=0)
    args = ap.parse_args()

    t0 = time.monotonic()
    srcs = [args.first_source] * args.count if args.same_source else \
        sources(args.first_source, args.count)
    socks, failed = [], 0
    for src in srcs:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((src, 0))
            s.setblocking(False)
            err = s.connect_ex((args.host, args.port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            socks.append(s)
        except OSError as e:
            failed += 1
            if failed == 1:
                print("connect from %s failed: %s" % (src, e), flush=True)
            s.close()
    # Wait (bounded) for the connects, then send what the mode says.
    deadline = time.monotonic() + 10
    pending = {s.fileno(): s for s in socks}
    poller = select.poll()  # select() stops at fd 1024
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            s = pending.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                failed += 1
                socks.remove(s)
                s.close()
                continue
            data = payload(args.send)
            if data:
                try:
                    s.send(data)
                except OSError:
                    pass
    for s in pending.values():
        failed += 1
        socks.remove(s)
        s.close()
    time.sleep(args.settle)
    n_open = sum(1 for s in socks if still_open(s))
    print("held open=%d closed=%d failed=%d" % (n_open, len(socks) - n_open, failed), flush=True)
    if args.hold > 0:
        time.sleep(max(0.0, args.hold - (time.monotonic() - t0)))
    else:
        sys.stdin.readline()
    for s in socks:
        s.close()
    print("released", flush=True)
    return 0 if n_open >= args.min_open else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""soak_ffmpeg.py - ffmpeg calls through the call app, held until SIGTERM (scripts/soak.sh).

Each call is two stock ffmpeg processes, as tests/integration/test_call_app.sh runs them: a
player of call/<dest> (started first; the packets it gets are written as framecrc lines, one per
audio message, to a pipe this script reads) and, a second later, a publisher of a 1 kHz tone
(lavfi, Speex 16 kHz, -re) to the same name. <dest> is soak-ffI@<--callee>, one name per call.

Every --progress seconds, one line per call and an end line on stdout (flushed), in callbench's
PROGRESS format (tests/tools/callbench.c) plus what is only ffmpeg's:

  PROGRESS t=<s> call=<i> up=0|1 dead=0|1 byed=0 tx=0 rx=<messages played> bytes_in=<payload
           bytes played> gaps=<pauses > 100 ms between messages> max_gap_ms=<the longest>
           ts_gaps=<jumps > 100 ms in the messages' timestamps> pub_rc=<exit status or -> play_rc=..
  PROGRESS_END t=<s> calls=<n>

up: both processes run and the player has had audio; dead: one of them ended on its own (a client
disconnected). SIGTERM or SIGINT: the publishers are stopped (ffmpeg unpublishes: the call is hung
up), then the players; a last block is printed and the script exits 0.
"""
import argparse
import os
import selectors
import signal
import subprocess
import sys
import time

GAP_S = 0.100


class Call:
    def __init__(self, i):
        self.i = i
        self.play = None
        self.pub = None
        self.buf = b""
        self.rx = 0
        self.bytes = 0
        self.last_t = 0.0
        self.last_ts = None
        self.gaps = 0
        self.max_gap = 0.0
        self.ts_gaps = 0
        self.dead = False
        self.stopping = False

    def line(self, text, now):
        parts = [p.strip() for p in text.split(",")]
        if len(parts) < 6 or not parts[0].isdigit():
            return  # framecrc's header lines
        self.rx += 1
        try:
            self.bytes += int(parts[4])
            ts = int(parts[1])
        except ValueError:
            return
        if self.last_t > 0 and now - self.last_t > GAP_S:
            self.gaps += 1
            self.max_gap = max(self.max_gap, now - self.last_t)
        self.last_t = now
        if self.last_ts is not None and ts - self.last_ts > GAP_S * 1000:
            self.ts_gaps += 1
        self.last_ts = ts


def rc(p):
    return "-" if p is None or p.poll() is None else str(p.returncode)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="rtmp://HOST:PORT/call")
    ap.add_argument("--callee", required=True, help="HOST:PORT of the SIP callee")
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--progress", type=float, default=10)
    ap.add_argument("--logs", required=True, help="directory for each ffmpeg's stderr")
    ap.add_argument("--stagger", type=float, default=0.5, help="seconds between calls")
    a = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    ff = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    sel = selectors.DefaultSelector()
    calls = [Call(i) for i in range(a.calls)]
    t0 = time.monotonic()

    def progress():
        t = time.monotonic() - t0
        for c in calls:
            alive = all(p is not None and p.poll() is None for p in (c.play, c.pub))
            print(f"PROGRESS t={t:.1f} call={c.i} up={int(alive and c.rx > 0)} "
                  f"dead={int(c.dead)} byed=0 tx=0 rx={c.rx} bytes_in={c.bytes} gaps={c.gaps} "
                  f"max_gap_ms={c.max_gap * 1000:.1f} ts_gaps={c.ts_gaps} "
                  f"pub_rc={rc(c.pub)} play_rc={rc(c.play)}")
        print(f"PROGRESS_END t={t:.1f} calls={len(calls)}", flush=True)

    def spawn(args, log):
        with open(os.path.join(a.logs, log), "ab") as err:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=err)

    def read(c, now):
        try:
            data = os.read(c.play.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            sel.unregister(c.play.stdout)
            return
        c.buf += data
        *lines, c.buf = c.buf.split(b"\n")
        for ln in lines:
            c.line(ln.decode(errors="replace"), now)

    # start: the player first (the call app holds it until the call is up), the publisher after
    pending = []  # (due time, call) of publishers to start
    for c in calls:
        if stop:
            break
        dest = f"{a.url}/soak-ff{c.i}@{a.callee}"
        c.play = spawn(ff + ["-analyzeduration", "1000000", "-i", dest, "-map", "0:a",
                             "-c", "copy", "-flush_packets", "1", "-f", "framecrc", "pipe:1"],
                       f"ff{c.i}.play.log")
        os.set_blocking(c.play.stdout.fileno(), False)
        sel.register(c.play.stdout, selectors.EVENT_READ, c)
        pending.append((time.monotonic() + 1.0, c, dest))
        time.sleep(a.stagger)
    next_p = t0 + a.progress
    while not stop:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, c, dest = pending.pop(0)
            c.pub = spawn(ff + ["-re", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=16000",
                                "-c:a", "libspeex", "-ac", "1", "-ar", "16000", "-f", "flv", dest],
                          f"ff{c.i}.pub.log")
            c.pub.stdout.close()
        for key, _ in sel.select(timeout=0.05):
            read(key.data, time.monotonic())
        for c in calls:
            if not c.dead and any(p is not None and p.poll() is not None for p in (c.play, c.pub)):
                c.dead = True
        if time.monotonic() >= next_p:
            progress()
            next_p += a.progress
    # stop: publishers first (the call is hung up), then the players; SIGKILL after 5 s each
    for group in ("pub", "play"):
        procs = [getattr(c, group) for c in calls if getattr(c, group) is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        end = time.monotonic() + 5
        while any(p.poll() is None for p in procs) and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.05):
                read(key.data, time.monotonic())
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    progress()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""avsync.py - how far apart a recording's audio and video are, from marks made to be found.

The test's publisher sends a white picture and a tone burst at the start of every second
(black and silence otherwise). In FILE this finds each picture that turns white (ffprobe's
signalstats, luma average) and each tone onset (ffmpeg's silencedetect), pairs every flash
with the nearest onset, and prints one line:

    flashes F onsets A pairs P median_ms M min_ms X max_ms Y frames N width W height H

where the offsets are audio onset minus flash, in ms (positive: audio late). Exit 0 when at
least --min-pairs pairs were found, 1 otherwise (2 when the tools fail).
"""
import argparse
import re
import statistics
import subprocess
import sys


def has_video(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=index",
         "-of", "csv=p=0", path], capture_output=True, text=True, timeout=60).stdout
    return bool(out.strip())


def flashes(path):
    if not has_video(path):
        return [], 0
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-f", "lavfi", "-i", f"movie={path},signalstats",
         "-show_entries", "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    times, bright = [], False
    frames = 0
    for line in out.splitlines():
        parts = line.split(",")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            continue
        frames += 1
        t, y = float(parts[0]), float(parts[1])
        if y > 128 and not bright:
            times.append(t)
        bright = y > 128
    return times, frames


def onsets(path):
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", path, "-vn", "-af",
         "silencedetect=n=-35dB:d=0.05", "-f", "null", "-"],
        capture_output=True, text=True, timeout=120, check=True).stderr
    return [float(m) for m in re.findall(r"silence_end: ([0-9.]+)", err)]


def dims(path):
    if not has_video(path):
        return 0, 0
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", path],
        capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    w, _, h = out.partition(",")
    return (int(w), int(h)) if w.isdigit() and h.isdigit() else (0, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--min-pairs", type=int, default=3)
    a = ap.parse_args()
    try:
        fl, frames = flashes(a.file)
        on = onsets(a.file)
        w, h = dims(a.file)
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        print(f"avsync: cannot analyse {a.file}: {e}")
        return 2
    offs = []
    for f in fl:
        near = min(on, key=lambda o: abs(o - f)) if on else None
        if near is not None and abs(near - f) < 0.45:
            offs.append((near - f) * 1000.0)
    med = statistics.median(offs) if offs else float("nan")
    print(f"flashes {len(fl)} onsets {len(on)} pairs {len(offs)} median_ms {med:.1f} "
          f"min_ms {min(offs) if offs else float('nan'):.1f} "
          f"max_ms {max(offs) if offs else float('nan'):.1f} frames {frames} width {w} height {h}")
    return 0 if len(offs) >= a.min_pairs else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""How much a spare segment's zero-fill slows the inbox writer's syncs, by chunk size.

One thread appends 1.1 KB records to a preallocated 64 MB file with `pwrite` + `fdatasync`
every 200 µs (the inbox writer at ~5,000 deliveries/s, one delivery per sync); another
zero-fills a fresh 64 MB file once a second the way the inbox janitor does (write a chunk,
`fdatasync`, repeat), or does nothing ("none"). Prints the sync latency percentiles and how
long each fill took.

Usage: benches/ingest/zero_fill.py DIR [MODE ...]   MODE: none, or a chunk size like 1M, 128K
       (DIR must be on the disk under test; the script makes and removes a folder in it.)
"""
import os
import shutil
import sys
import tempfile
import threading
import time

SECONDS = 8
SEGMENT = 64 << 20


def size(mode):
    unit = {"K": 1 << 10, "M": 1 << 20}[mode[-1].upper()]
    return int(mode[:-1]) * unit


def run(base, mode):
    d = tempfile.mkdtemp(dir=base)
    try:
        fd = os.open(os.path.join(d, "active"), os.O_CREAT | os.O_WRONLY)
        zeros = b"\0" * (1 << 20)
        for _ in range(SEGMENT // len(zeros)):
            os.write(fd, zeros)
        os.fsync(fd)
        stop = threading.Event()
        fills = []

        def filler():
            chunk = b"\0" * size(mode)
            n = 0
            while not stop.wait(1.0):
                path = os.path.join(d, f"spare{n}")
                n += 1
                f = os.open(path, os.O_CREAT | os.O_WRONLY)
                t = time.perf_counter()
                for _ in range(SEGMENT // len(chunk)):
                    if stop.is_set():
                        break
                    os.write(f, chunk)
                    os.fdatasync(f)
                os.fsync(f)
                os.close(f)
                fills.append(time.perf_counter() - t)

        th = None
        if mode != "none":
            th = threading.Thread(target=filler)
            th.start()
        lat, record, off = [], b"x" * 1100, 0
        end = time.perf_counter() + SECONDS
        while time.perf_counter() < end:
            t = time.perf_counter()
            os.pwrite(fd, record, off)
            off += len(record)
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
            rest = 0.0002 - (time.perf_counter() - t)
            if rest > 0:
                time.sleep(rest)
        stop.set()
        if th:
            th.join()
        os.close(fd)
        lat.sort()
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3
        took = " ".join(f"{x * 1e3:.0f}" for x in fills)
        print(f"{mode:>5}: {len(lat)} syncs  p50 {q(.5):.3f}  p99 {q(.99):.3f}  "
              f"p99.9 {q(.999):.3f} ms  fills took [{took}] ms")
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for m in sys.argv[2:] or ["none", "1M", "128K"]:
        run(sys.argv[1], m)

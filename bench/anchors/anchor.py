#!/usr/bin/env python3
"""The peer: each mechanism `ticketlab bench` measures, as the Python
tutorials the labs are built on would write it with `multiprocessing`.

Run:  python3 bench/anchors/anchor.py MODE WORKERS TICKETS [DIR]

  mutex   a multiprocessing.Value under its own get_lock()
  atomic  the same: Python has no compare-and-swap, so its nearest
          shared counter is the locked Value
  file    a JSON file {"count": N} under a multiprocessing.Lock, read with
          json.load and rewritten with json.dump (DIR holds it)
  pipe    a seller process owns the count; buyers send 4-byte requests
          down one os.pipe and read 8-byte replies from their own pipes
  fork    start WORKERS Processes that return at once, then join them

Every buyer is started before a start line (an Event) and released
together; the clock runs from the release to the last join. Prints one JSON
line; exits 1 if the sale did not sell exactly.
"""

import json
import multiprocessing as mp
import os
import struct
import sys
import tempfile
import time

MODES = ("mutex", "atomic", "file", "pipe", "fork")


def buy_value(start, count, sold):
    start.wait()
    mine = 0
    while True:
        with count.get_lock():
            if count.value <= 0:
                break
            count.value -= 1
        mine += 1
    with sold.get_lock():
        sold.value += mine


def buy_file(start, lock, path, sold):
    start.wait()
    mine = 0
    while True:
        with lock:
            with open(path) as f:
                count = json.load(f)["count"]
            if count <= 0:
                break
            with open(path, "w") as f:
                json.dump({"count": count - 1}, f)
        mine += 1
    with sold.get_lock():
        sold.value += mine


def seller(requests, replies, count, left):
    # Only the buyers hold the request pipe's write end: EOF ends the sale.
    os.close(requests[1])
    for r, _ in replies:
        os.close(r)
    pending = b""
    while True:
        data = os.read(requests[0], 4096)
        if not data:
            break
        pending += data
        whole = len(pending) - len(pending) % 4
        for (worker,) in struct.iter_unpack("=I", pending[:whole]):
            reply = count
            if count > 0:
                count -= 1
            os.write(replies[worker][1], struct.pack("=q", reply))
        pending = pending[whole:]
    left.value = count


def ask_seller(start, worker, requests, replies, sold):
    start.wait()
    mine = 0
    word = struct.pack("=I", worker)
    reply_fd = replies[worker][0]
    while True:
        os.write(requests[1], word)
        (reply,) = struct.unpack("=q", os.read(reply_fd, 8))
        if reply <= 0:
            break
        mine += 1
    with sold.get_lock():
        sold.value += mine


def noop():
    pass


def main(argv):
    if len(argv) < 4 or argv[1] not in MODES:
        print(f"usage: {argv[0]} {'|'.join(MODES)} WORKERS TICKETS [DIR]", file=sys.stderr)
        return 2
    mode, workers, tickets = argv[1], int(argv[2]), int(argv[3])
    where = argv[4] if len(argv) > 4 else tempfile.gettempdir()
    mp.set_start_method("fork")

    if mode == "fork":
        t0 = time.perf_counter()
        procs = [mp.Process(target=noop) for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        secs = time.perf_counter() - t0
        print(json.dumps({"mode": mode, "workers": workers, "elapsed_ms": secs * 1e3,
                          "buyers_per_sec": workers / secs}))
        return 0

    start = mp.Event()
    sold = mp.Value("q", 0)
    left = mp.Value("q", 0)
    path = None
    extra = []
    if mode in ("mutex", "atomic"):
        count = mp.Value("q", tickets)
        procs = [mp.Process(target=buy_value, args=(start, count, sold)) for _ in range(workers)]
    elif mode == "file":
        fd, path = tempfile.mkstemp(prefix="anchor-", suffix=".json", dir=where)
        with os.fdopen(fd, "w") as f:
            json.dump({"count": tickets}, f)
        lock = mp.Lock()
        procs = [mp.Process(target=buy_file, args=(start, lock, path, sold))
                 for _ in range(workers)]
    else:
        requests = os.pipe()
        replies = [os.pipe() for _ in range(workers)]
        extra = [mp.Process(target=seller, args=(requests, replies, tickets, left))]
        procs = [mp.Process(target=ask_seller, args=(start, i, requests, replies, sold))
                 for i in range(workers)]
    try:
        for p in extra + procs:
            p.start()
        if mode == "pipe":
            for fd in (requests[0], requests[1], *[fd for pair in replies for fd in pair]):
                os.close(fd)
        t0 = time.perf_counter()
        start.set()
        for p in procs + extra:
            p.join()
        secs = time.perf_counter() - t0
        if mode == "file":
            with open(path) as f:
                remaining = json.load(f)["count"]
        elif mode == "pipe":
            remaining = left.value
        else:
            remaining = count.value
    finally:
        if path:
            os.unlink(path)
    print(json.dumps({"mode": mode, "workers": workers, "tickets": tickets, "sold": sold.value,
                      "remaining": remaining, "elapsed_ms": secs * 1e3,
                      "purchases_per_sec": sold.value / secs}))
    return 0 if sold.value == tickets and remaining == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

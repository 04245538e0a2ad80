#!/usr/bin/env python3
"""A WebSocket client that stops reading, for benches/experiments.sh.

    stalled_reader.py HOST:PORT [--hold 20] [--rcvbuf 4096]

Opens one WebSocket connection (with a small receive buffer, so that the kernel holds
little on its behalf), reads the 101, then reads nothing for --hold seconds while the
server keeps sending to it: the slow consumer of the experiment. Then it reads what the
kernel kept and prints one JSON object: the bytes read, the data frames among them, the
close code of a Close frame if one arrived, and how the connection stood once everything
kept for it was read (`ended`): "closed" (the server closed TCP), "reset", or "open"
(nothing more came for a second). Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import struct
import sys
import time


def handshake(sock: socket.socket, host: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise OSError("the server closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise OSError(f"not upgraded: {head.splitlines()[0]!r}")
    return head


def frames(data: bytes):
    """(opcode, payload) of each whole frame in `data`, from a server (unmasked)."""
    i = 0
    while i + 2 <= len(data):
        opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length == 126:
            if i + 2 > len(data):
                return
            (length,) = struct.unpack(">H", data[i : i + 2])
            i += 2
        elif length == 127:
            if i + 8 > len(data):
                return
            (length,) = struct.unpack(">Q", data[i : i + 8])
            i += 8
        if i + length > len(data):
            return
        yield opcode, data[i : i + length]
        i += length


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addr")
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--rcvbuf", type=int, default=4096)
    args = parser.parse_args()
    host, port = args.addr.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.connect((host, int(port)))
    handshake(sock, args.addr)
    print(f"stalled_reader: connected, not reading for {args.hold} s", file=sys.stderr, flush=True)
    time.sleep(args.hold)
    sock.settimeout(1.0)
    data = b""
    ended = "open"
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except socket.timeout:
            break
        except ConnectionResetError:
            ended = "reset"
            break
        if not chunk:
            ended = "closed"
            break
        data += chunk
    close_code = None
    data_frames = 0
    for opcode, payload in frames(data):
        if opcode == 8:
            close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        elif opcode in (0, 1, 2):
            data_frames += 1
    print(
        json.dumps(
            {
                "bytes_read": len(data),
                "data_frames": data_frames,
                "close_code": close_code,
                "ended": ended,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

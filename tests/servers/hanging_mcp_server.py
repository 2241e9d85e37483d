"""An MCP server that accepts the connection and never answers: it reads
every message (so the client's writes succeed) and replies to none.

    python hanging_mcp_server.py                # stdio
    python hanging_mcp_server.py http PORT      # accepts TCP, never responds
"""

from __future__ import annotations

import socket
import sys
import threading


def hold(conn: socket.socket) -> None:
    with conn:
        while conn.recv(65536):
            pass


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        listener = socket.create_server(("127.0.0.1", int(sys.argv[2])))
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=hold, args=(conn,), daemon=True).start()
    for _ in sys.stdin.buffer:
        pass


if __name__ == "__main__":
    main()

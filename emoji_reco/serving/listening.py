"""Where a server of several processes listens: a socket of each process's own on one address (SO_REUSEPORT),
so that the kernel spreads new connections across the processes by their addresses. With one socket shared by
all (uvicorn's way), whichever process wakes first accepts a whole burst: in 3 of 10 rounds of 16 clients
connecting at once, one process got all 16 (bench/RESULTS.md). The price: connections still waiting in a
process's queue when it exits are reset rather than taken by another."""
import socket


class PerProcessSocket(socket.socket):
    """A socket bound to the server's address that, handed to a worker process (uvicorn pickles its sockets
    to each), arrives there as a new socket of that worker's own on the same address. The parent's one only
    holds the address: it never listens, so it takes no connections."""

    def __reduce__(self):
        return bound, self.getsockname()[:2]


def bound(host: str, port: int) -> PerProcessSocket:
    """A socket bound to (host, port) beside the other processes' (SO_REUSEPORT); port 0: a free one."""
    sock = PerProcessSocket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock

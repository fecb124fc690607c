"""The CPU one call to the dispatcher costs the worker: prints figures, asserts nothing.

The worker's real ``Dispatcher`` sends heartbeats (a small JSON body each way, the shape
of most of its calls) one after another to a canned HTTP/1.1 server on 127.0.0.1 that
answers each request at once, in this process: the process's CPU time over the calls
is all client (the canned answer costs a few microseconds). Three runs of ``--calls``
each, after a warm-up; the figure of a whole worker is ``bench/worker.py``'s.

    .venv/bin/python bench/worker_calls.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from corral.agent.dispatcher import Dispatcher

BODY = b'{"cancel":[],"lost":[]}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class Canned(asyncio.Protocol):
    """Answers every whole request (head and Content-Length body) at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(ANSWER)


async def main(calls: int) -> None:
    server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    dispatcher = Dispatcher(url, "crl_bench", "bench-1")
    held = [("job-1", 1)]
    try:
        for _ in range(3):
            for _ in range(100):
                await dispatcher.heartbeat(held, False, 5.0)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(calls):
                await dispatcher.heartbeat(held, False, 5.0)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{calls} heartbeats: CPU {cpu / calls * 1e3:.3f} ms a call, "
                f"wall {wall / calls * 1e3:.3f} ms"
            )
    finally:
        await dispatcher.aclose()
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    asyncio.run(main(parser.parse_args().calls))

"""The gateway's event loop (kit/runtime.py): asyncio's, with TCP_NODELAY on every accepted
connection, including on a listening socket made as uvicorn makes it for `--workers N`; and the
standalone simulator's collections."""

import asyncio
import socket
import subprocess
import sys

from pesagate.kit.runtime import EVENT_LOOP, GatewayEventLoop


def accepted_socket_nodelay(listener: socket.socket) -> int:
    """Serve one connection on `listener` with the gateway's loop; its TCP_NODELAY."""

    async def main() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_side = writer.get_extra_info("socket")
            accepted.set_result(server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            host, port = listener.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            value = await asyncio.wait_for(accepted, 5)
            writer.close()
            return value

    with asyncio.Runner(loop_factory=GatewayEventLoop) as runner:
        return runner.run(main())


def test_connections_accepted_on_a_socket_made_as_uvicorn_workers_make_it_have_nodelay():
    listener = socket.socket(family=socket.AF_INET)  # proto 0, as uvicorn's bind_socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    assert listener.proto == 0
    assert accepted_socket_nodelay(listener) != 0


def test_uvicorn_takes_the_loop_by_its_import_string():
    from uvicorn.config import Config

    assert Config(app="x:y", loop=EVENT_LOOP).get_loop_factory() is GatewayEventLoop


def test_the_simulator_freezes_what_survives_a_full_collection():
    # In a process of its own: the hook changes how the whole process collects.
    script = (
        "import gc\n"
        "from pesagate.kit.runtime import freeze_after_full_collections\n"
        "freeze_after_full_collections()\n"
        "state = [[n] for n in range(10_000)]\n"
        "before = gc.get_freeze_count()\n"
        "gc.collect(1)\n"
        "assert gc.get_freeze_count() == before, 'a young collection froze'\n"
        "gc.collect()\n"
        "assert gc.get_freeze_count() >= before + 10_000, gc.get_freeze_count()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

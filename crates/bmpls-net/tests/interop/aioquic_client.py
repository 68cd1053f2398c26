"""A bmpls client on an independent QUIC/TLS stack (aioquic, with pyca/cryptography's strict
DER certificate parser): handshake with ALPN bmpls/1 pinning the consortium CA, then one
garbage request. Prints the negotiated ALPN and the answer frame in hex.

Usage: aioquic_client.py HOST PORT CA_PEM SERVER_NAME
"""

import asyncio
import sys

from aioquic.asyncio import connect
from aioquic.quic.configuration import QuicConfiguration


async def main(host: str, port: int, cafile: str, server_name: str) -> None:
    config = QuicConfiguration(
        is_client=True, alpn_protocols=["bmpls/1"], server_name=server_name
    )
    config.load_verify_locations(cafile)
    async with connect(host, port, configuration=config, wait_connected=True) as client:
        print("alpn", client._quic.tls.alpn_negotiated, flush=True)
        reader, writer = await client.create_stream()
        garbage = b"\xffnot a bmpls request"
        writer.write(len(garbage).to_bytes(4, "big") + garbage)
        writer.write_eof()
        length = int.from_bytes(await reader.readexactly(4), "big")
        answer = await reader.readexactly(length)
        print("answer", answer.hex(), flush=True)


if __name__ == "__main__":
    host, port, cafile, name = sys.argv[1:5]
    asyncio.run(asyncio.wait_for(main(host, int(port), cafile, name), timeout=20))

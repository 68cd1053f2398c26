#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the repository's
own fixtures: the golden encodings of bmpls-types, the ORE known-answer vectors, the example
files of the walkthroughs and the configuration files. Values the fixtures do not hold
(envelopes, responses, peer messages) are assembled here from those bytes, field by field as
borsh lays them out. Run from anywhere: python3 fuzz/seeds.py"""

import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
VERSION = b"\x02"
NOW_MS = 1_796_083_200_000  # bmpls_fuzz::NOW_MS


def u8(n):
    return struct.pack("<B", n)


def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


def string(s):
    return u32(len(s)) + s


def golden():
    lines = (ROOT / "crates/bmpls-types/testdata/golden.txt").read_text().split("\n")
    return {k: bytes.fromhex(v) for k, v in (l.split(" ", 1) for l in lines if l.strip())}


def write(target, name, data):
    path = CORPUS / target
    path.mkdir(parents=True, exist_ok=True)
    (path / name).write_bytes(data)


def split2(first, rest):
    return struct.pack(">H", len(first)) + first + rest


def main():
    g = golden()
    record = g["record"][1:]  # borsh body, without the version byte
    block = g["block"][1:]
    report = u8(3) + record  # Transaction::Report
    chain = string(b"bmpls-dev")
    key = bytes(range(32))
    sig = b"\x5a" * 64
    cert = u64(7) + u32(0) + b"\x03" * 32 + u32(1) + key + sig

    # types: selector byte, then the input.
    write("types", "record", u8(4) + VERSION + record)
    write("types", "block", u8(1) + VERSION + block)
    write("types", "report", u8(0) + VERSION + report)
    write("types", "certificate", u8(3) + VERSION + cert)
    write("types", "precommit", u8(5) + VERSION + chain + u64(7) + u32(0) + b"\x03" * 32)
    kat = [l.split() for l in (ROOT / "crates/bmpls-ore/testdata/kat.txt").read_text().splitlines()
           if l and not l.startswith("#")]
    for i, (_, _, _, left, right) in enumerate(kat[:3]):
        left, right = bytes.fromhex(left), bytes.fromhex(right)
        write("types", f"ore-left-{i}", u8(6) + left)
        write("types", f"ore-right-{i}", u8(6) + right)
        write("types", f"ore-compare-{i}", u8(7) + split2(left, right))

    # net: envelopes (even selector) and responses (odd).
    def envelope(request):
        return VERSION + key + chain + b"\x04" * 32 + b"\x09" * 16 + u64(NOW_MS) + request + sig

    write("net", "status", u8(0) + envelope(u8(1)))
    write("net", "submit-report", u8(0) + envelope(u8(0) + u32(1) + report))
    write("net", "next-seq", u8(0) + envelope(u8(6) + b"\x01" * 16))
    write("net", "grants", u8(0) + envelope(u8(5) + u8(0) + b"\x02" * 16))
    status = u8(1) + chain + u64(7) + b"\x03" * 32 + u64(0)
    write("net", "response-status", u8(1) + VERSION + status)
    write("net", "response-busy", u8(1) + VERSION + u8(8) + u8(6))
    refused = u8(1) + u8(2) + string(b"replay")
    committed = u8(0) + b"\x07" * 32 + u64(7)
    write("net", "response-submitted", u8(1) + VERSION + u8(0) + u32(2) + committed + refused)

    # consensus: peer messages (even selector) and log entries (odd).
    vote = u8(1) + u64(7) + u32(0) + u8(1) + b"\x03" * 32 + key
    proposal = u64(7) + u32(0) + u8(0) + key + block + sig
    write("consensus", "vote", u8(0) + VERSION + u8(1) + vote + sig)
    write("consensus", "proposal", u8(0) + VERSION + u8(0) + proposal)
    write("consensus", "polka", u8(0) + VERSION + u8(2) + u64(7) + u32(0) + b"\x03" * 32
          + u32(1) + key + sig)
    write("consensus", "sync-request", u8(0) + VERSION + u8(4) + u64(1))
    write("consensus", "sync-response", u8(0) + VERSION + u8(5) + block + cert)
    write("consensus", "gossip", u8(0) + VERSION + u8(6) + u32(1) + report)
    write("consensus", "wal-timeout", u8(1) + VERSION + u8(2) + u8(0) + u32(3))
    write("consensus", "wal-signed", u8(1) + VERSION + u8(7) + u64(7) + u32(0) + u8(1)
          + b"\x08" * 32)
    write("consensus", "wal-proposed", u8(1) + VERSION + u8(3) + u64(7) + u32(0) + u8(0) + key
          + block + u8(1))

    # frame: a stream of frames, selector first.
    def frame(payload):
        return struct.pack(">I", len(payload)) + payload

    write("frame", "client", u8(0) + frame(envelope(u8(1))) + frame(envelope(u8(0) + u32(1) + report)))
    write("frame", "peer", u8(1) + frame(VERSION + u8(4) + u64(1)) + frame(VERSION + u8(1) + vote + sig))

    # import: selector (0 OwnTracks, 1 GPX, 2 GeoJSON, 3 detected), then the file.
    examples = ROOT / "examples"
    write("import", "owntracks", u8(0) + (examples / "owntracks.rec").read_bytes())
    write("import", "gpx", u8(1) + (examples / "walk.gpx").read_bytes())
    write("import", "geojson", u8(2) + (examples / "evening.geojson").read_bytes())
    write("import", "detected", u8(3) + (examples / "walk.gpx").read_bytes())

    # config: 0 levels, 1 genesis, 2 node + genesis, 3 patient keystore, 4 carer card,
    # 5 enrolment request.
    config = ROOT / "config"
    genesis = (config / "genesis.toml").read_bytes()
    write("config", "levels", u8(0) + (config / "levels.toml").read_bytes())
    write("config", "genesis", u8(1) + genesis)
    node = (config / "node1.toml").read_text().replace(
        '"../certs/local/genesis.toml"', '"genesis.toml"').encode()
    write("config", "node", u8(2) + split2(node, genesis))
    patient = b'patient = "0102030405060708090a0b0c0d0e0f10"\nepoch_length_ms = 86400000\n'
    levels = (config / "levels.toml").read_bytes()
    write("config", "patient", u8(3) + split2(patient, split2(levels, b"22" * 32 + b"\n")))
    card = (b'carer = "0102030405060708090a0b0c0d0e0f10"\nrole = "gp"\n'
            b'identity_key = "' + b"ab" * 32 + b'"\nagreement_key = "' + b"cd" * 32 + b'"\n')
    write("config", "carer", u8(4) + card)
    # Two valid Ed25519 keys of large order: the genesis's node1 and node2.
    request = (b'patient = "0102030405060708090a0b0c0d0e0f10"\n'
               b'reporter_key = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"\n'
               b'custodian_key = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"\n'
               b'level_count = 6\nore_levels = 3\nepoch_length_ms = 86400000\n')
    write("config", "enrolment", u8(5) + request)


if __name__ == "__main__":
    main()

"""The client package's protobuf code is generated from the server's one batch.proto, and both
sides read each other's batches the same way."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from integrations_client import encoding as client_encoding
from integrations_client.proto import batch_pb2 as client_pb2

from integrations.proto import batch_pb2 as server_pb2
from integrations.proto import testing

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "integrations" / "proto" / "batch.proto"
CLIENT_COPY = ROOT / "client" / "src" / "integrations_client" / "proto" / "batch_pb2.py"


def test_client_copy_is_a_fresh_generation_of_the_one_proto(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={tmp_path}", str(PROTO)],
        check=True,
    )
    fresh = (tmp_path / "batch_pb2.py").read_bytes()
    assert CLIENT_COPY.read_bytes() == fresh, "client copy is stale: run `make proto` and commit it"
    assert Path(server_pb2.__file__).read_bytes() == fresh, "server module is stale: run `make proto`"
    assert client_pb2.Batch.DESCRIPTOR.file.serialized_pb == server_pb2.Batch.DESCRIPTOR.file.serialized_pb


RECORDS = [
    {
        "sku": "A-1",
        "name": "Chair",
        "price": Decimal("49.90"),
        "currency": "EUR",
        "quantity": 3,
        "active": True,
        "attributes": {"color": "red", "dims": [1, 2.5, None], "nested": {"x": False}, "empty": {}},
    },
    {"sku": "B-2", "price": 9.99, "quantity": -(2**63), "huge": 2**64, "gone": None},
    {"currency": "USD"},
    {},
]


def test_server_reads_client_batches_as_the_client_meant_them():
    batch = client_encoding.encode_batch(RECORDS, seq=3, deletes=["OLD-1", "OLD-2"], compress=False)
    seq, records, deletes = testing.decode_batch(batch.body)
    assert (seq, deletes) == (3, ["OLD-1", "OLD-2"])
    assert records == [
        {**RECORDS[0], "price": "49.90"},
        {"sku": "B-2", "price": 9.99, "quantity": -(2**63), "huge": str(2**64), "gone": None},
        {"currency": "USD"},
        {},
    ]


def test_client_reads_server_batches():
    body = testing.encode_batch(RECORDS, seq=5, deletes=["K"])
    seq, records, deletes = client_encoding.decode_protobuf(body)
    assert (seq, deletes) == (5, ["K"])
    assert records == testing.decode_batch(body)[1]


def test_integer_uuid_and_composite_keys_in_deletes_both_ways():
    import json
    import uuid

    device = uuid.uuid4()
    keys = ["OLD-1", 1042, {"order_no": "A-1", "line": 2}, device]
    expected = ["OLD-1", 1042, {"line": 2, "order_no": "A-1"}, str(device)]

    def canonical(items):
        return sorted(json.dumps(k, sort_keys=True) for k in items)

    batch = client_encoding.encode_batch([], seq=1, deletes=keys, compress=False)
    assert canonical(testing.decode_batch(batch.body)[2]) == canonical(expected)
    batch = client_encoding.encode_batch([], seq=1, deletes=keys, fmt="json", compress=False)
    assert canonical(json.loads(batch.body)["deletes"]) == canonical(expected)
    server = testing.encode_batch([], seq=1, deletes=["OLD-1", 7, {"order_no": "B", "line": 1}])
    assert client_encoding.decode_protobuf(server)[2] == ["OLD-1", 7, {"order_no": "B", "line": 1}]

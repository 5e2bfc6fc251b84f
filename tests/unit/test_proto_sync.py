"""The protobuf code in the repository is what protoc (grpcio-tools) makes of batch.proto today:
the server's module and the client package's copy cannot drift from the one .proto file."""

from pathlib import Path

import pytest
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "integrations" / "proto"
GENERATED = [
    ROOT / "integrations" / "proto" / "batch_pb2.py",
    ROOT / "client" / "src" / "integrations_client" / "proto" / "batch_pb2.py",
]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("proto")
    code = protoc.main(["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", str(PROTO_DIR / "batch.proto")])
    assert code == 0, "protoc failed on batch.proto"
    return (out / "batch_pb2.py").read_text()


@pytest.mark.parametrize("committed", GENERATED, ids=["server", "client"])
def test_generated_module_matches_the_proto_file(regenerated, committed):
    if not committed.exists():
        if "client" in committed.parts:
            pytest.skip("no client package copy")
        pytest.fail(f"{committed} is missing: run `make proto`")
    assert committed.read_text() == regenerated, f"{committed.relative_to(ROOT)} is stale: run `make proto`"


def test_codec_round_trip_of_every_value_kind():
    from decimal import Decimal

    from integrations.proto.testing import decode_batch, encode_batch

    recs = [
        {
            "sku": "A",
            "name": "Chair",
            "price": Decimal("12.50"),
            "quantity": 3,
            "active": True,
            "attributes": {"size": "L", "dims": [1, 2.5, None], "nested": {"ok": False}},
        },
        {"sku": "B", "price": 1.25, "note": None},  # fields absent from a record stay absent
    ]
    seq, decoded, deletes = decode_batch(encode_batch(recs, seq=7, deletes=["OLD"]))
    assert seq == 7 and deletes == ["OLD"]
    assert decoded == [
        {
            "sku": "A",
            "name": "Chair",
            "price": "12.50",
            "quantity": 3,
            "active": True,
            "attributes": {"size": "L", "dims": [1, 2.5, None], "nested": {"ok": False}},
        },
        {"sku": "B", "price": 1.25, "note": None},
    ]


def test_summary_counts_without_decoding_and_refuses_what_decoding_refuses():
    from integrations.proto import batch_pb2
    from integrations.proto.codec import summarize_batch
    from integrations.proto.testing import decode_batch, encode_batch

    body = encode_batch([{"sku": "A"}, {"sku": "B", "name": "b"}], seq=3, deletes=["C"])
    assert summarize_batch(body) == (3, 2, ["C"])
    too_wide = batch_pb2.Batch(seq=1, fields=["sku"])
    too_wide.records.add().values.add().string_value = "A"
    too_wide.records[0].values.add().string_value = "extra"
    repeated = batch_pb2.Batch(seq=1, fields=["sku", "sku"])
    for message in (too_wide, repeated):
        data = message.SerializeToString()
        for function in (summarize_batch, decode_batch):
            with pytest.raises(ValueError):
                function(data)
    with pytest.raises(ValueError):
        summarize_batch(b"\xff\xff\xff")


def test_a_value_without_kind_inside_a_list_or_object_is_null():
    from integrations.proto import batch_pb2
    from integrations.proto.testing import decode_batch

    message = batch_pb2.Batch(seq=1, fields=["sku", "attributes"])
    record = message.records.add()
    record.values.add().string_value = "A"
    attributes = record.values.add().object_value
    attributes.fields["empty"].SetInParent()
    attributes.fields["list"].list_value.values.add()
    assert decode_batch(message.SerializeToString())[1] == [{"sku": "A", "attributes": {"empty": None, "list": [None]}}]

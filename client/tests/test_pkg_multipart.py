"""The streamed multipart body of an upload is what a form parser reads."""

import email.parser
import io

from integrations_client.multipart import MultipartFile


def test_body_parses_as_multipart_and_rewinds():
    data = b"sku,name\nA,Chair\n" * 1000
    body = MultipartFile(io.BytesIO(data), filename="products.csv", fields={"format": "csv", "mode": "full"})
    chunks = []
    while chunk := body.read(777):
        chunks.append(chunk)
    raw = b"".join(chunks)
    assert len(raw) == len(body)
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {body.headers['Content-Type']}\r\n\r\n".encode() + raw
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.get_payload()}
    assert parts["format"].get_payload() == "csv"
    assert parts["file"].get_filename() == "products.csv"
    assert parts["file"].get_payload(decode=True) == data
    body.rewind()
    assert body.read() == raw

"""Streaming readers of record files."""

import io

import pytest
from integrations_client import Unparseable
from integrations_client.files import FileFormatError, guess_format, iter_json_array, iter_ndjson


def items(text, chunk_size=3):
    return list(iter_json_array(io.StringIO(text), chunk_size=chunk_size))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1 << 16])
def test_json_array_split_at_any_chunk_boundary(chunk_size):
    text = ' [ {"sku": "A", "price": 9.99, "q": 12345}, {"s": "a, ] b"} ,\n 123456, "x", [1, [2]], null, true ] \n'
    assert items(text, chunk_size) == [
        {"sku": "A", "price": 9.99, "q": 12345},
        {"s": "a, ] b"},
        123456,
        "x",
        [1, [2]],
        None,
        True,
    ]


def test_empty_array():
    assert items("[]") == [] and items("  [ \n ] ") == []


@pytest.mark.parametrize(
    "text,message",
    [
        ("", r"does not start with \["),
        ('{"a": 1}', r"does not start with \["),
        ('[{"a": 1} {"b": 2}]', "expected , or ]"),
        ('[{"a": 1},', "item 1 of the array is not valid JSON"),
        ('[{"a": 1]', "item 0 of the array is not valid JSON"),
        ("[1] [2]", "goes on after the end"),
    ],
)
def test_json_array_errors(text, message):
    with pytest.raises(FileFormatError, match=message):
        items(text)


def test_json_array_is_lazy():
    class Endless(io.StringIO):
        def read(self, size=-1):
            return '{"a": 1},'

    reader = iter_json_array(_Prefixed("[", Endless()))
    assert [next(reader) for _ in range(1000)] == [{"a": 1}] * 1000


class _Prefixed:
    def __init__(self, prefix, rest):
        self.prefix, self.rest = prefix, rest

    def read(self, size):
        if self.prefix:
            out, self.prefix = self.prefix, ""
            return out
        return self.rest.read(size)


def test_ndjson():
    assert list(iter_ndjson(io.StringIO('{"a": 1}\n\n  {"b": 2.5}\n'))) == [{"a": 1}, {"b": 2.5}]


def test_a_bad_ndjson_line_does_not_stop_the_file():
    items = list(iter_ndjson(io.StringIO('{"a": 1}\n{oops\n\n{"b": 2}\n' + "[" * 5000 + "\n")))
    assert items[0] == {"a": 1} and items[2] == {"b": 2} and len(items) == 4
    bad = items[1]
    assert isinstance(bad, Unparseable) and bad.text == "{oops" and bad.reason.startswith("line 2 is not valid JSON")
    assert isinstance(items[3], Unparseable) and len(items[3].text) == 2000  # as the server keeps such a line


def test_guess_format():
    assert guess_format("data.JSON") == "json"
    assert guess_format("a.jsonl") == guess_format("a.ndjson") == "ndjson"
    assert guess_format("a.csv") == "csv"
    assert guess_format("a.txt", "csv") == "csv"
    with pytest.raises(FileFormatError, match="--format"):
        guess_format("a.txt")

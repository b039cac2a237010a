"""Property tests for grade_predictions.parse_predictions: tolerated rewrites never change the score,
breaking edits are always reported in one line, and random byte damage never crashes the grader nor
lets it score a file that an independent strict csv-based reader rejects."""
from __future__ import annotations

import csv

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import course_config
from common import predictions as gp
from common.predictions import InvalidPredictions

FAST = settings(deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(deadline=None, max_examples=3000, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- an independent reader
def reference_parse(data: bytes, n: int) -> list[int] | None:
    """The labels by Id if ``data`` is a valid predictions file for Ids 0..n-1, else None.

    Written from the rules in the module docstring, sharing no code with the grader: strict UTF-8
    (one optional BOM), no NUL, CR only as part of CRLF, blank lines skipped, the csv module with
    quoting off, header exactly Id,Label, every row two plain ASCII integers."""
    if len(data) > course_config.PREDICTIONS_MAX_BYTES:
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    if "\0" in text or "\r" in text.replace("\r\n", ""):
        return None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    lines = [line for line in lines if line.strip(" \t")]
    records = list(csv.reader(lines, delimiter=",", quoting=csv.QUOTE_NONE, strict=True))
    if not records or [field.strip(" \t") for field in records[0]] != ["Id", "Label"]:
        return None
    by_id: dict[int, int] = {}
    for record in records[1:]:
        fields = [field.strip(" \t") for field in record]
        if len(fields) != 2 or not all(f and f.isascii() and f.isdigit() for f in fields):
            return None
        id_, label = int(fields[0]), int(fields[1])
        if id_ in by_id or id_ >= n or label >= course_config.NUM_CLASSES:
            return None
        by_id[id_] = label
    if len(by_id) != n:
        return None
    return [by_id[i] for i in range(n)]


def grade(data: bytes, n: int):
    """(labels list or None, message or None); fails the test on any exception but InvalidPredictions."""
    try:
        return gp.parse_predictions(data, n).tolist(), None
    except InvalidPredictions as err:
        message = str(err)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return None, message


def canonical(pred: list[int]) -> bytes:
    return ("Id,Label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(pred))).encode()


predictions = st.lists(st.integers(0, 9), min_size=1, max_size=30)


# ------------------------------------------------------------------- (a) tolerated rewrites keep scores
@st.composite
def tolerated_rewrite(draw):
    """A predictions list and a valid file for it: BOM, CRLF, padding, shuffled rows, blank lines."""
    pred = draw(predictions)
    pad = st.sampled_from(["", " ", "\t", "  ", " \t "])
    eol = st.sampled_from(["\n", "\r\n"])
    blank = st.sampled_from(["", "", "", "\n", "\r\n", " \t\n", "\n\n"])
    order = draw(st.permutations(range(len(pred))))
    lines = [f"{draw(pad)}Id{draw(pad)},{draw(pad)}Label{draw(pad)}"]
    lines += [f"{draw(pad)}{'0' * draw(st.integers(0, 2))}{i}{draw(pad)},{draw(pad)}{pred[i]}{draw(pad)}"
              for i in order]
    text = draw(blank) + "".join(line + draw(eol) + draw(blank) for line in lines)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return pred, bom + text.encode()


@FAST
@given(tolerated_rewrite(), st.lists(st.integers(0, 9), min_size=30, max_size=30))
def test_tolerated_rewrites_never_change_the_score(case, truth):
    pred, data = case
    labels = np.array(truth[:len(pred)])
    parsed, message = grade(data, len(pred))
    assert message is None
    assert parsed == pred == reference_parse(data, len(pred))
    assert gp._parse_slow(data, len(pred)).tolist() == pred
    got, expected = gp.score(np.array(parsed), labels), gp.score(np.array(pred), labels)
    assert (got.accuracy, got.points) == (expected.accuracy, expected.points)


# ------------------------------------------------------------------ (b) breaking edits are always caught
def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _with_row(data: bytes, row: int, new: bytes) -> bytes:
    lines = _lines(data)
    lines[row + 1] = new
    return b"\n".join(lines)


def _drop_row(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    return b"\n".join(line for i, line in enumerate(_lines(data)) if i != row + 1), "missing"


def _duplicate_row(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    return data + f"{row},{pred[row]}\n".encode(), "duplicate"


def _non_integer_label(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    bad = draw(st.sampled_from(["7.0", "cat", "", "+5", "5_0", "\u0665", "\uff15", "0x1", "1e0", "five",
                                "1 2", "\u00a05", "'3'", "3.", "nan"]) |
               st.text(alphabet="abcxyz.!#$%&()*/:<=>?@[]^_`{|}~é\u0665", min_size=1, max_size=5))
    return _with_row(data, row, f"{row},{bad}".encode()), "label"


def _out_of_range_label(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    bad = draw(st.integers(10, 10**30) | st.integers(-10**30, -1))
    return _with_row(data, row, f"{row},{bad}".encode()), "out of range"


def _extra_column(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    extra = draw(st.sampled_from(["0.5", "", "1", "x"]))
    return _with_row(data, row, f"{row},{pred[row]},{extra}".encode()), "fields"


def _extra_id(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    new_id = draw(st.integers(len(pred), 10**6))
    return _with_row(data, row, f"{new_id},{pred[row]}".encode()), "extra id"


def _changed_header(data, pred, draw):
    header, word = draw(st.sampled_from([
        ("id,label", "header"), ("ID,Label", "header"), ("Label,Id", "header"), ("Id,Labels", "header"),
        ("Id,Label,Extra", "header"), ("Id", "header"), ('"Id","Label"', "header"), ("0,5", "header"),
        ("Index,Label", "header"), ("Id;Label", "semicolons"), ("Id\tLabel", "tabs")]))
    lines = _lines(data)
    lines[0] = header.encode()
    return b"\n".join(lines), word


def _nul_byte(data, pred, draw):
    at = draw(st.integers(0, len(data)))
    return data[:at] + b"\0" + data[at:], "NUL"


def _invalid_utf8(data, pred, draw):
    at = draw(st.integers(0, len(data)))
    byte = draw(st.sampled_from([0x80, 0xBF, 0xC0, 0xC1, 0xE9, 0xF5, 0xFF]))
    return data[:at] + bytes([byte]) + data[at:], "UTF-8"


def _bare_cr(data, pred, draw):
    newlines = [i for i, b in enumerate(data) if b == 0x0A]
    at = draw(st.sampled_from(newlines))
    return data[:at] + b"\r" + data[at + 1:], "bare CR"


def _quoted_field(data, pred, draw):
    row = draw(st.integers(0, len(pred) - 1))
    new = draw(st.sampled_from([f'"{row}",{pred[row]}', f'{row},"{pred[row]}"', f'"{row},{pred[row]}"']))
    return _with_row(data, row, new.encode()), "quoted"


def _semicolons(data, pred, draw):
    return data.replace(b",", b";"), "semicolons"


MUTATIONS = [_drop_row, _duplicate_row, _non_integer_label, _out_of_range_label, _extra_column, _extra_id,
             _changed_header, _nul_byte, _invalid_utf8, _bare_cr, _quoted_field, _semicolons]


@MANY
@given(predictions, st.sampled_from(MUTATIONS), st.data())
def test_breaking_edits_are_always_reported_in_one_line(pred, mutation, data):
    broken, word = mutation(canonical(pred), pred, data.draw)
    parsed, message = grade(broken, len(pred))
    assert parsed is None, (mutation.__name__, broken)
    assert word.lower() in message.lower(), (mutation.__name__, message)
    assert reference_parse(broken, len(pred)) is None


# ------------------------------------------------------ (c) random byte damage: no crash, no false accept
INTERESTING = b"0123456789,\n\r \t\"-+;.\x00\xef\xbb\xbf\xff\xfeIdLabel"
a_byte = st.sampled_from(list(b"0123456789,\n")) | st.sampled_from(list(INTERESTING)) | st.integers(0, 255)


@st.composite
def damaged(draw):
    """A valid file (canonical or tolerated rewrite) after 1-4 byte insertions, deletions, replacements,
    placed anywhere (counted from either end, so the rows get as much damage as the header)."""
    if draw(st.booleans()):
        pred = draw(st.lists(st.integers(0, 9), min_size=1, max_size=12))
        data = bytearray(canonical(pred))
    else:
        pred, data = draw(tolerated_rewrite())
        data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        offset = draw(st.integers(0, max(len(data) - 1, 0)))
        at = offset if draw(st.booleans()) else max(len(data) - 1 - offset, 0)
        if op == "insert":
            data[at:at] = bytes(draw(st.lists(a_byte, min_size=1, max_size=3)))
        elif data and op == "delete":
            del data[at:at + draw(st.integers(1, 3))]
        elif data:
            data[at] = draw(a_byte)
    return len(pred), bytes(data)


@MANY
@given(damaged())
def test_byte_damage_never_crashes_and_agrees_with_the_reference(case):
    n, data = case
    parsed, _ = grade(data, n)
    assert parsed == reference_parse(data, n)
    slow = None
    try:
        slow = gp._parse_slow(data, n).tolist()
    except InvalidPredictions:
        pass
    assert slow == parsed


@FAST
@given(st.binary(max_size=200), st.integers(1, 20))
def test_arbitrary_bytes_never_crash(data, n):
    parsed, _ = grade(data, n)
    assert parsed == reference_parse(data, n)

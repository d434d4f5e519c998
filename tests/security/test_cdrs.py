"""Attacks on the CDR doors: the API push (``POST /api/v1/cdrs``) and ``tarifa cdr import``.

The rule under attack (docs/cdr-ingestion.md): a refused record is reported with its index (or
line) and reason and never stops the others; the valid records are stored and charged, the
ingest run is finished, and the API answers with a JSON problem, never an HTML 500.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from tarifa.api.models import ApiToken
from tarifa.cdrs.models import Cdr, IngestRun
from tarifa.routing.models import Pop

pytestmark = pytest.mark.django_db

CDR = {
    "call_id": "ok-1",
    "callee": "442079460958",
    "start_time": "2026-03-02T10:00:00+00:00",
    "duration": 61,
    "sip_user": "alice",
    "connection": "carrier-1",
}


@pytest.fixture
def token(world):  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue("kamailio-1", switch=Pop.objects.create(name="pop-a"))
    return raw


def push(client, token: str, body: bytes | str, **extra):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/cdrs", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **extra
    )


def around(bad: str) -> bytes:
    """A batch [ok, bad, ok], ``bad`` written as raw JSON text."""
    first, last = json.dumps(CDR), json.dumps({**CDR, "call_id": "ok-3"})
    return f"[{first}, {bad}, {last}]".encode()


def assert_only_the_bad_one_refused(response, words: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert (body["received"], body["stored"]) == (3, 2), body
    assert [r["index"] for r in body["rejected"]] == [2], body
    reason = body["rejected"][0]["reason"]
    assert all(word in reason for word in words), reason
    assert body["charged"] == "0.0800"  # both good calls charged (2 minutes at 0.02 each)
    assert sorted(Cdr.objects.values_list("call_id", flat=True)) == ["ok-1", "ok-3"]
    run = IngestRun.objects.get()
    assert run.finished_at is not None and (run.received, run.stored, run.rejected) == (3, 2, 1)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (json.dumps({**CDR, "call_id": "bad", "duration": 10**20}), ("duration", "100000000000000000000", "week")),
        (
            json.dumps({**CDR, "call_id": "bad", "duration": 1}).replace(": 1,", ": " + "9" * 5000 + ","),
            ("duration", "week"),
        ),
        (
            '{"call_id": "bad", "callee": "44", "start_time": "2026-03-02T10:00:00Z", "duration": 1e999999999}',
            ("duration", "week"),
        ),
        (json.dumps({**CDR, "call_id": "bad", "caller": "\ud800"}), ("caller", "U+D800", "surrogate")),
        (json.dumps({**CDR, "call_id": "bad", "caller": "12\x0145"}), ("caller", "U+0001", "'12\\x0145'")),
        (json.dumps({**CDR, "call_id": "bad", "trunk": "a\x7fb"}), ("trunk", "U+007F")),
        (json.dumps({**CDR, "call_id": "b\x00d"}), ("call_id", "NUL")),
        (json.dumps({**CDR, "call_id": "bad", "caller": [[[[["x"]]]]]}), ("caller", "must be text")),
        (
            json.dumps({**CDR, "call_id": "bad", "caller": "C"}).replace('"C"', "[" * 600 + "]" * 600),
            ("caller", "must be text"),
        ),
        (
            json.dumps({**CDR, "call_id": "bad", "caller": "C"}).replace('"C"', "[" * 100_000 + "]" * 100_000),
            ("nested too deeply",),
        ),
        ("[" * 100_000 + "]" * 100_000, ("nested too deeply",)),
        ('{"call_id": "bad", "callee": 44,}', ("not valid JSON",)),
        ('"just text"', ("expected a JSON object",)),
    ],
    ids=[
        "int-beyond-64-bits",
        "int-of-5000-digits",
        "huge-exponent",
        "lone-surrogate",
        "control-character",
        "delete-character",
        "nul",
        "nested-value",
        "deep-value",
        "too-deep-to-parse",
        "too-deep-array",
        "bad-element",
        "not-an-object",
    ],
)
def test_one_bad_record_in_a_push_is_refused_alone(client, token, bad: str, words: tuple[str, ...]) -> None:
    assert_only_the_bad_one_refused(push(client, token, around(bad)), words)


def test_invalid_utf8_inside_a_record_is_refused_alone(client, token) -> None:
    bad = json.dumps({**CDR, "call_id": "bad", "caller": "CALLER"}).encode().replace(b"CALLER", b"12\xff\xfe")
    body = around("BAD").replace(b"BAD", bad)
    assert_only_the_bad_one_refused(push(client, token, body), ("caller", "invalid UTF-8", "0xFF"))


def test_a_body_that_is_not_a_batch_is_a_json_problem(client, token) -> None:
    for body in (b'[{"call_id": "a", "callee": "4', b"\xff\xfe[]", b'{"cdrs": [' + b"[" * 100_000, b"[1] 2"):
        response = push(client, token, body)
        assert response.status_code == 400, body[:20]
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["detail"]
    assert not Cdr.objects.exists()


def test_the_documented_maximum_batch_is_accepted(client, token) -> None:
    """10,000 CDRs (about 3.1 MB; Django's form limit is 2.5 MB) are stored and charged."""
    cdrs = [
        {
            **CDR,
            "call_id": f"max-{n:05d}-{'x' * 130}",
            "caller": "12025550123",
            "start_time": f"2026-03-02T10:{n // 600 % 60:02d}:{n // 10 % 60:02d}+00:00",
        }
        for n in range(10_000)
    ]
    body = json.dumps(cdrs).encode()
    assert len(body) > 3_000_000
    response = push(client, token, body)
    assert response.status_code == 200, response.content[:300]
    assert (response.json()["stored"], response.json()["rejected"]) == (10_000, [])
    assert Decimal(response.json()["charged"]) == Decimal("400.0000")
    assert Cdr.objects.count() == 10_000


def test_a_body_over_the_size_limit_is_a_json_problem(client, token) -> None:
    from tarifa.api.cdrs import MAX_BODY_BYTES

    response = push(client, token, b"[]", CONTENT_LENGTH=str(MAX_BODY_BYTES + 1))
    assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"
    assert str(MAX_BODY_BYTES) in response.json()["detail"]


def test_an_unexpected_error_is_a_json_problem_and_the_run_is_finished(client, token, monkeypatch) -> None:
    """Whatever goes wrong inside, the switch gets a problem document, not Django's HTML page."""
    from tarifa.cdrs import ingest as ingest_module

    def broken(self, frame):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(ingest_module.Ingestor, "_post_frame", broken)
    client.raise_request_exception = False
    response = push(client, token, json.dumps([CDR]))
    assert response.status_code == 500 and response["Content-Type"] == "application/problem+json"
    assert "boom" not in response.content.decode()  # no internals
    assert IngestRun.objects.get().finished_at is not None


# --- tarifa cdr import ----------------------------------------------------------------------------


def _import(path: Path, *args: str):  # type: ignore[no-untyped-def]
    import typer
    from typer.testing import CliRunner

    from tarifa.cdrs import commands

    app = typer.Typer()
    commands.register(app)
    return CliRunner().invoke(app, ["cdr", "import", str(path), *args])


@pytest.mark.parametrize("fmt", ["tarifa-json", "tarifa"])
def test_cli_import_refuses_each_bad_line_and_reads_on(world, tmp_path, fmt: str) -> None:
    """--batch-size 1: every line is read, the good ones charged, the bad ones in the rejects file."""
    Pop.objects.get_or_create(name="pop-a")  # --switch names a POP
    good = [{**CDR, "call_id": f"ok-{n}"} for n in range(1, 5)]
    bad_records = [
        {**CDR, "call_id": "huge", "duration": 10**20},
        {**CDR, "call_id": "control", "caller": "12\x0145"},
        {**CDR, "call_id": "utf8", "caller": "UTF8"},
    ]
    if fmt == "tarifa-json":
        lines = [json.dumps(r, ensure_ascii=False).encode() for r in [good[0], *bad_records[:2], good[1]]]
        lines.insert(3, json.dumps(bad_records[2]).encode().replace(b"UTF8", b"\xff"))
        lines += [
            b'{"call_id": "deep", "caller": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            json.dumps(good[2]).encode(),
            json.dumps(good[3]).encode(),
        ]
        path = tmp_path / "cdrs.jsonl"
    else:
        names = ["call_id", "callee", "start_time", "duration", "sip_user", "connection", "caller"]
        rows = [[str(r.get(n, "")) for n in names] for r in [good[0], *bad_records, good[1], good[2], good[3]]]
        lines = [",".join(names).encode()] + [",".join(row).encode() for row in rows]
        lines = [line.replace(b"UTF8", b"\xff") for line in lines]
        path = tmp_path / "cdrs.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = _import(path, "--format", fmt, "--switch", "pop-a", "--batch-size", "1")
    assert result.exit_code == 3, result.output
    assert sorted(Cdr.objects.values_list("call_id", flat=True)) == ["ok-1", "ok-2", "ok-3", "ok-4"]
    assert all(row.price == Decimal("0.04") for row in Cdr.objects.all())
    run = IngestRun.objects.get()
    assert run.finished_at is not None and run.stored == 4 and run.rejected == len(lines) - 4 - (fmt == "tarifa")
    with (tmp_path / (path.name + ".rejects.csv")).open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        rejects = list(csv.DictReader(f))
    reasons = {r["reason"].split(":")[0] for r in rejects}
    assert any("duration" in r["reason"] and "week" in r["reason"] for r in rejects), rejects
    assert any("caller contains the control character U+0001" in r["reason"] for r in rejects), rejects
    assert any("invalid UTF-8" in r["reason"] for r in rejects), rejects
    assert len(rejects) == len(lines) - 4 - (fmt == "tarifa"), reasons
    # the rejected line is written back as it was, invalid bytes included
    raw = (tmp_path / (path.name + ".rejects.csv")).read_bytes()
    assert b"\xff" in raw


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "0001-01-01T00:00:00Z"])
def test_a_time_at_the_ends_of_the_calendar_is_refused_alone(client, token, when: str) -> None:
    """A datetime overflow (converting to UTC) or year 1 must not fail the batch either."""
    bad = json.dumps({**CDR, "call_id": "bad", "start_time": when})
    assert_only_the_bad_one_refused(push(client, token, around(bad)), ("start_time", "out of range"))


def test_an_empty_body_is_a_json_problem(client, token) -> None:
    response = push(client, token, b"")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert "empty" in response.json()["detail"]


def test_cli_refuses_a_switch_name_no_record_could_carry(world, tmp_path) -> None:
    Pop.objects.get_or_create(name="pop-a")  # --switch names a POP
    path = tmp_path / "cdrs\udcff.jsonl".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    Path(path).write_text(json.dumps(CDR) + "\n")
    result = _import(path, "--format", "tarifa-json")
    assert result.exit_code == 2 and "switch contains" in result.output and "file's name" in result.output
    result = _import(path, "--format", "tarifa-json", "--switch", "pbx\x01")
    assert result.exit_code == 2 and "U+0001" in result.output
    assert not Cdr.objects.exists() and not IngestRun.objects.exists()
    result = _import(path, "--format", "tarifa-json", "--switch", "pop-a")
    assert result.exit_code == 0, result.output
    assert IngestRun.objects.get().source.endswith("cdrs\\udcff.jsonl")


def test_cli_rejects_file_is_readable_by_its_owner_only(world, tmp_path) -> None:
    """The rejects file holds the refused CDRs (callers, callees, accounts): created 600, and an
    existing one (say 644 from an older run) tightened to 600 when it is written again."""
    Pop.objects.get_or_create(name="pop-a")  # --switch names a POP
    path = tmp_path / "cdrs.jsonl"
    path.write_text(json.dumps({**CDR, "call_id": "huge", "duration": 10**20}) + "\n")
    target = tmp_path / "refused.csv"
    result = _import(path, "--format", "tarifa-json", "--switch", "pop-a", "--rejects", str(target))
    assert result.exit_code == 3, result.output
    assert target.stat().st_mode & 0o777 == 0o600
    default = tmp_path / (path.name + ".rejects.csv")
    default.write_text("old\n")
    default.chmod(0o644)
    result = _import(path, "--format", "tarifa-json", "--switch", "pop-a")
    assert result.exit_code == 3, result.output
    assert default.stat().st_mode & 0o777 == 0o600 and "huge" in default.read_text()

"""Batch Transform joins output to input by line: every record gets exactly one answer line, in order,
whatever it holds (a blank line, a record that reads `text`), for mini-batches cut at any line."""
import csv
import io
import json

import httpx
import pytest

from emoji_reco.data.cleaning import is_empty
from emoji_reco.serving import payloads
from helpers.serving import running, scrape, wait_ready

# A file of 40 records: the first and the 21st read "text", the 11th is blank, the 31st only spaces.
RECORDS = [f"record {i}: off to the beach, so happy" for i in range(40)]
RECORDS[0] = RECORDS[20] = "text"
RECORDS[10], RECORDS[30] = "", "   "
UNSCORABLE = {10, 30}
# mini-batches as SageMaker may cut them: a blank record alone, one at a batch's end
CUTS = [0, 7, 11, 23, 31, 40]


def _csv(records: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([r] if r else [] for r in records)
    return out.getvalue().encode()


def _jsonl(records: list[str]) -> bytes:
    return "".join((json.dumps({"text": r}) if r else "") + "\n" for r in records).encode()


@pytest.mark.parametrize("encode, ctype", [(_csv, "text/csv"), (_jsonl, "application/jsonlines")])
def test_every_record_gets_one_answer_line_in_order(tiny_bundle, encode, ctype):
    with running(model=str(tiny_bundle[1]), answer_every_record=True, max_texts=1000, max_request_tokens=0,
                 max_refusals_per_client_s=0) as (url, _):
        wait_ready(url)
        lines = []
        for start, end in zip(CUTS, CUTS[1:]):
            answer = httpx.post(f"{url}/invocations", content=encode(RECORDS[start:end]),
                                headers={"Content-Type": ctype, "Accept": ctype})
            assert answer.status_code == 200, answer.text
            lines += answer.text.splitlines()
        assert len(lines) == len(RECORDS)  # joined back to the input by line
        for i, (record, line) in enumerate(zip(RECORDS, lines)):
            if i in UNSCORABLE:
                assert payloads.UNSCORABLE in line
                continue
            alone = httpx.post(f"{url}/invocations", content=encode([record]),
                               headers={"Content-Type": ctype, "Accept": ctype}).text.strip()
            assert line == alone, (i, record)
        counted = scrape(url)[("emoji_reco_unscorable_records_total", ())]
        assert counted == len(UNSCORABLE)


def test_a_csv_header_is_skipped_only_when_declared():
    body = b"text\nfirst\n\nsecond\n"
    assert payloads.parse_texts(body, "text/csv", 8, is_empty) == ["text", "first", "second"]
    assert payloads.parse_texts(body, 'text/csv; header="present"', 8, is_empty) == ["first", "second"]
    assert payloads.parse_texts(body, "text/csv; header=absent", 8, is_empty, refuse_empty=False) == [
        "text", "first", "", "second"]
    with pytest.raises(payloads.BadRequest, match=r"texts\[1\] is empty"):  # online, a blank text is refused
        payloads.parse_texts(b"first\n  \n", "text/csv", 8, is_empty)

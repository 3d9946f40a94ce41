"""Writes the small Parquet files the Swift fuzz test mutates (Tests/IngestTests/
ParquetFuzzTests.swift). Rows are made up here (no third-party text). Re-run with pyarrow
to regenerate: `build/venv/bin/python Tests/IngestTests/Fixtures/make_parquet_fixtures.py`."""
from pathlib import Path

import json

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def rows(n: int):
    out = []
    for i in range(n):
        turns = [{"role": "system", "content": "Be brief."}] if i % 3 == 0 else []
        for t in range(1 + i % 3):
            turns.append({"role": "user", "content": f"question {i}.{t} with 中文 and émoji 😀"})
            turns.append({"role": "assistant", "content": "answer " * (1 + (i * 7 + t) % 5)})
        out.append({
            "prompt": f"Prompt number {i}: " + "word " * (i % 11),
            "input": None if i % 4 == 0 else ("" if i % 4 == 1 else f"input {i % 5}"),
            "response": ["yes", "no", "maybe", f"long answer {i}"][i % 4],
            "n": i * 1000003 - 5000,
            "x": i / 8,
            "flag": i % 2 == 0,
            "messages": None if i == 5 else turns,
            "meta": {"title": f"t{i % 3}", "score": i % 7},
        })
    return out


def main():
    table = pa.Table.from_pylist(rows(60))
    # The oracle the Swift test compares with: pyarrow's reading of the same rows.
    (HERE / "fuzz_expected.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table.to_pylist()), encoding="utf-8")
    pq.write_table(table, HERE / "fuzz_snappy_dict_v1.parquet", compression="snappy", row_group_size=20,
                   data_page_size=512, data_page_version="1.0")
    pq.write_table(table, HERE / "fuzz_zstd_plain_v2.parquet", compression="zstd", use_dictionary=False,
                   row_group_size=25, data_page_size=512, data_page_version="2.0", write_page_checksum=True)
    pq.write_table(table, HERE / "fuzz_gzip_none_v1.parquet", compression="gzip", row_group_size=60,
                   data_page_version="1.0")
    pq.write_table(table, HERE / "fuzz_plain_uncompressed_v2.parquet", compression="none", use_dictionary=False,
                   row_group_size=30, data_page_version="2.0")


if __name__ == "__main__":
    main()

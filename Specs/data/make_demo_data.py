"""Rebuild the demo sample in this folder from ../shared/data (run from the repo root:
python3 Specs/data/make_demo_data.py). Needs the `zstandard` package. The output is
deterministic: the first records of each source, in file order."""
import json
import os
import sys

import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "data")


def load_json(path):
    raw = open(path, "rb").read()
    if path.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    return json.loads(raw)


def load_jsonl(path):
    raw = open(path, "rb").read()
    if path.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(raw).read()
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def main():
    if not os.path.isdir(SHARED):
        sys.exit(f"{SHARED} not found")
    en = load_json(os.path.join(SHARED, "alpaca/alpaca52k_en.json.zst"))[:2000]
    json.dump(en, open(os.path.join(HERE, "alpaca_en_2000.json"), "w"), ensure_ascii=False, indent=1)
    dup = load_json(os.path.join(SHARED, "alpaca/align_anything_assets_supervised_train.json"))
    dup = [{k: r[k] for k in ("instruction", "input", "output")} for r in dup]
    json.dump(dup, open(os.path.join(HERE, "align_anything_supervised_32.json"), "w"), ensure_ascii=False, indent=1)
    zh = load_json(os.path.join(SHARED, "alpaca/llamafactory_alpaca_zh_demo.json"))[:500]
    with open(os.path.join(HERE, "alpaca_zh_500.jsonl"), "w") as f:
        for r in zh:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    peps = load_jsonl(os.path.join(SHARED, "corpus/en_python_peps.jsonl.zst"))
    peps = [p for p in peps if len(p["text"]) < 20000][:40]
    with open(os.path.join(HERE, "python_peps_40.jsonl"), "w") as f:
        for p in peps:
            f.write(json.dumps({"text": p["text"]}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

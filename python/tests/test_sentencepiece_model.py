"""SentencePiece `tokenizer.model` files (the ModelProto protobuf) of BPE type: ids equal
the `sentencepiece` package's `encode(text)` (no BOS/EOS), and what cannot be done exactly
is refused naming the field (exit 2). The models are trained here, with the package's own
trainer, on the repository's Alpaca sample: a Llama-style model (identity normalizer, a
dummy prefix, spaces kept, byte fallback, user-defined symbols), one that collapses extra
whitespace, one without byte fallback, and shapes that must be refused."""
from __future__ import annotations

import json
import subprocess

import pytest

spm = pytest.importorskip("sentencepiece")

from shared_texts import shared_data_dir  # noqa: E402

EDGE_TEXTS = [
    "", " ", "   ", "  leading and trailing  ", "multiple   spaces\there", "digits 1234567890 and 3.14",
    "中文字符测试 こんにちは 🙂😀", "<|im_start|>user\nhi<|im_end|>", "literal <s> and </s> and <unk>",
    "a<|im_start|>b", " <|im_end|> ", "x\u00a0y\u200bz", "ünïcödé façade", "\n\nnewlines\n", "tab\t\ttab",
    "▁already escaped ▁▁", "🙂", "Ω≈ç√∫˜µ≤≥÷", "ﾃｽﾄ ｶﾀｶﾅ", "a  b   c    d",
]


def alpaca_texts(repo):
    rows = json.loads((repo / "Specs" / "data" / "alpaca_en_2000.json").read_text())
    return [r["instruction"] + "\n" + r["input"] + "\n" + r["output"] for r in rows]


def train(folder, name, texts, **options):
    corpus = folder / "train.txt"
    if not corpus.exists():
        corpus.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
    args = dict(input=str(corpus), model_prefix=str(folder / name), model_type="bpe", vocab_size=2000,
                character_coverage=0.995, minloglevel=2)
    args.update(options)
    spm.SentencePieceTrainer.train(**args)
    return folder / f"{name}.model"


LLAMA_STYLE = dict(normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
                   byte_fallback=True, split_digits=True, allow_whitespace_only_pieces=True,
                   user_defined_symbols=["<|im_start|>", "<|im_end|>"])


@pytest.fixture(scope="module")
def models(tmp_path_factory, repo):
    folder = tmp_path_factory.mktemp("spm")
    texts = alpaca_texts(repo)
    return {
        "llama-style": train(folder, "llama", texts, **LLAMA_STYLE),
        "collapsing whitespace": train(folder, "collapse", texts, **{**LLAMA_STYLE, "remove_extra_whitespaces": True}),
        "no dummy prefix, no byte fallback": train(folder, "plain", texts, **{**LLAMA_STYLE, "add_dummy_prefix": False,
                                                                             "byte_fallback": False}),
        "nmt_nfkc": train(folder, "nfkc", texts, byte_fallback=True),
        "unigram": train(folder, "unigram", texts, model_type="unigram", normalization_rule_name="identity"),
    }


def encode(tokenmill_bin, model, texts, tmp_path):
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", str(model), "--field", "text", str(src)],
                          capture_output=True, text=True)


@pytest.mark.binary
@pytest.mark.parametrize("kind", ["llama-style", "collapsing whitespace", "no dummy prefix, no byte fallback"])
def test_ids_equal_sentencepiece(tokenmill_bin, models, kind, repo, tmp_path):
    texts = alpaca_texts(repo)[:600] + EDGE_TEXTS
    run = encode(tokenmill_bin, models[kind], texts, tmp_path)
    assert run.returncode == 0, run.stderr
    got = [json.loads(line) for line in run.stdout.splitlines()]
    sp = spm.SentencePieceProcessor(model_file=str(models[kind]))
    want = [sp.encode(t) for t in texts]
    assert len(got) == len(want)
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0]!r}"
    # The texts reached byte fallback, user-defined symbols and the unknown piece's cases.
    if kind == "llama-style":
        flat = {i for ids in want for i in ids}
        assert sp.piece_to_id("<|im_start|>") in flat and sp.piece_to_id("<0xF0>") in flat


@pytest.mark.binary
def test_ids_equal_sentencepiece_on_shared_data(tokenmill_bin, models, tmp_path):
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data is absent (next to the repository): the held-out SentencePiece texts are skipped")
    import zstandard

    rows = json.loads(zstandard.ZstdDecompressor().stream_reader(open(root / "alpaca" / "alpaca52k_zh.json.zst", "rb")).read())
    texts = [r["instruction"] + "\n" + r.get("input", "") + "\n" + r["output"] for r in rows[:1500]]
    run = encode(tokenmill_bin, models["llama-style"], texts, tmp_path)
    assert run.returncode == 0, run.stderr
    sp = spm.SentencePieceProcessor(model_file=str(models["llama-style"]))
    got = [json.loads(line) for line in run.stdout.splitlines()]
    assert got == [sp.encode(t) for t in texts]


@pytest.mark.binary
@pytest.mark.parametrize("kind, named", [("nmt_nfkc", "normalizer_spec nmt_nfkc"), ("unigram", "model_type UNIGRAM")])
def test_what_cannot_be_exact_is_refused_by_name(tokenmill_bin, models, kind, named, tmp_path):
    run = encode(tokenmill_bin, models[kind], ["hello"], tmp_path)
    assert run.returncode == 2, run.stderr
    assert named in run.stderr and str(models[kind]) in run.stderr and run.stdout == ""


@pytest.mark.binary
@pytest.mark.parametrize("cut", [1, 7, 100, -3])
def test_a_damaged_model_file_is_bad_input(tokenmill_bin, models, cut, tmp_path):
    data = models["llama-style"].read_bytes()
    damaged = tmp_path / "damaged.model"
    damaged.write_bytes(data[:cut] if cut > 0 else data[:cut] + b"\xff\xff\xff")
    run = encode(tokenmill_bin, damaged, ["hello"], tmp_path)
    assert run.returncode in (2, 65), run.stderr
    assert "damaged.model" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.binary
def test_a_build_with_a_model_file_trains_on_sentencepiece_ids(tokenmill_bin, models, repo, tmp_path):
    model = models["llama-style"]
    rows = json.loads((repo / "Specs" / "data" / "alpaca_en_2000.json").read_text())[:50]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"text": r["output"]}) + "\n" for r in rows))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "name": "spm", "sources": [{"name": "a", "path": "data.jsonl", "map": {"text": "text"}}],
        "dedup": {"exact": False}, "tokenizer": str(model), "template": "plain",
        "pack": {"seq_len": 4096, "strategy": "none"}, "output": {"dir": "out"}}))
    run = subprocess.run([str(tokenmill_bin), "build", str(spec), "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    sp = spm.SentencePieceProcessor(model_file=str(model))
    from tokenmill import Dataset

    ds = Dataset(str(tmp_path / "out"), "train")
    got = sorted(ds[i]["input_ids"].tolist() for i in range(len(ds)))
    want = sorted(sp.encode(r["output"]) + [sp.eos_id()] for r in rows)
    assert got == want
    # The model file travels with the shards (index.json tokenizer.file), and decodes them.
    assert (tmp_path / "out" / "tokenizer.model").read_bytes() == model.read_bytes()
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["tokenizer"]["file"] == "tokenizer.model"
    verify = subprocess.run([str(tokenmill_bin), "verify", str(tmp_path / "out")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    ds.verify()
    inspect = subprocess.run([str(tokenmill_bin), "inspect", str(tmp_path / "out"), "--seq", "0"], capture_output=True, text=True)
    assert inspect.returncode == 0, inspect.stderr
    first = sp.decode(ds[0]["input_ids"].tolist()[:-1])
    assert first[:40] in inspect.stdout


@pytest.fixture(scope="module")
def family_models(tmp_path_factory, repo):
    """A Llama-style model and a Gemma-style one (Gemma's control ids: pad 0, eos 1, bos 2,
    unk 3; no dummy prefix), trained once for the converter tests."""
    folder = tmp_path_factory.mktemp("families")
    texts = alpaca_texts(repo)
    return {"llama": train(folder, "llama", texts, **{**LLAMA_STYLE, "user_defined_symbols": []}),
            "gemma": train(folder, "gemma", texts, **{**LLAMA_STYLE, "add_dummy_prefix": False, "user_defined_symbols": [],
                                                       "pad_id": 0, "eos_id": 1, "bos_id": 2, "unk_id": 3})}


@pytest.mark.binary
@pytest.mark.parametrize("family", ["llama legacy", "llama", "llama without prefix space", "codellama", "gemma"])
def test_tokenizer_json_as_transformers_converts_each_family(tokenmill_bin, family, family_models, repo, tmp_path):
    """The tokenizer.json shapes model repositories carry for the SentencePiece families,
    made the way they were made: a trained SentencePiece BPE model run through
    transformers' own slow-to-fast converters (Llama 2 with `legacy` on — a Prepend/Replace
    normalizer — and off — a Metaspace pre-tokenizer, with and without the prefix space;
    CodeLlama; Gemma: a Replace normalizer and a Split on " " that never cuts). Every id
    equals `tokenizers`' on the files' texts and the edge cases."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed: the converter test is skipped")
    import tokenizers
    from transformers.convert_slow_tokenizer import convert_slow_tokenizer
    texts = alpaca_texts(repo)
    llama, gemma = str(family_models["llama"]), str(family_models["gemma"])
    slow = {"llama legacy": lambda: transformers.LlamaTokenizer(vocab_file=llama, legacy=True),
            "llama": lambda: transformers.LlamaTokenizer(vocab_file=llama, legacy=False, add_prefix_space=True),
            "llama without prefix space": lambda: transformers.LlamaTokenizer(vocab_file=llama, legacy=False, add_prefix_space=False),
            "codellama": lambda: transformers.CodeLlamaTokenizer(vocab_file=llama),
            "gemma": lambda: transformers.GemmaTokenizer(vocab_file=gemma)}[family]()
    path = tmp_path / "tokenizer.json"
    convert_slow_tokenizer(slow).save(str(path))
    sample = texts[:500] + EDGE_TEXTS
    run = encode(tokenmill_bin, path, sample, tmp_path)
    assert run.returncode == 0, run.stderr
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.encode_special_tokens = True
    want = [e.ids for e in hf.encode_batch(sample, add_special_tokens=False)]
    got = [json.loads(line) for line in run.stdout.splitlines()]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert len(got) == len(want) and not bad, f"{len(bad)} texts differ, first: {sample[bad[0]]!r}" if bad else "line count"

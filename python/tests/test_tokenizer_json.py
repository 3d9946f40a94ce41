"""tokenizer.json vocabularies: ids equal the `tokenizers` library's
`encode(text, add_special_tokens=False)` (special tokens never produced from data, i.e.
`encode_special_tokens = True`), and what the engine cannot do exactly is refused at load
with one line naming the component (exit 2, nothing on stdout)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

from hf_convert import LLAMA3, QWEN2, build  # noqa: E402
from shared_texts import shared_data_dir  # noqa: E402


def fixture_texts(repo):
    return json.loads((repo / "Tests" / "BPETests" / "Fixtures" / "tiktoken_cases.json").read_text())["texts"]


def sample_shared(limit_bytes=2_000_000):
    root = shared_data_dir()
    if root is None:
        return []
    import zstandard

    texts, n = [], 0
    for rel in ("alpaca/alpaca52k_zh.json.zst", "chat/sharegpt_v3_split_part0.json.zst", "alpaca/alpaca52k_en.json.zst"):
        data = json.loads(zstandard.ZstdDecompressor().stream_reader(open(root / rel, "rb")).read())

        def walk(x):
            nonlocal n
            if n > limit_bytes:
                return
            if isinstance(x, str):
                texts.append(x)
                n += len(x.encode())
            elif isinstance(x, dict):
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)

        n = 0
        walk(data)
    return texts


def encode_with_tokenmill(binary, tokenizer, texts):
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    out = subprocess.run([str(binary), "encode", "--tokenizer", tokenizer, "--field", "text"], input=payload,
                         capture_output=True, check=True)
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("hf")
    return {
        "gpt2": build("gpt2", str(out)),
        "gpt2-nfc": build("gpt2", str(out), nfc=True),
        "gpt2-nfkc": build("gpt2", str(out), nfkc=True),
        "cl100k_base": build("cl100k_base", str(out)),
        "o200k_base": build("o200k_base", str(out)),
        "o200k_base-ignore-merges": build("o200k_base", str(out), ignore_merges=True),
        "llama3-pattern": build("cl100k_base", str(out), pattern=LLAMA3, tag="-llama3"),
        "qwen2-pattern": build("cl100k_base", str(out), pattern=QWEN2, tag="-qwen2"),
        "dir": str(out),
    }


@pytest.mark.binary
@pytest.mark.parametrize("variant", ["gpt2", "gpt2-nfc", "gpt2-nfkc", "cl100k_base", "o200k_base", "o200k_base-ignore-merges",
                                     "llama3-pattern", "qwen2-pattern"])
def test_ids_equal_hf_tokenizers(variant, built, tokenmill_bin, repo):
    path = built[variant]
    hf = tokenizers.Tokenizer.from_file(path)
    hf.encode_special_tokens = True
    texts = fixture_texts(repo) + sample_shared()
    texts += ["e\u0301 cafe\u0301 \u212b", "<|endoftext|> is text here", "a  \n  ", "x \r\n\r\n  y  ", "12345 6", "  \t\n"]
    got = encode_with_tokenmill(tokenmill_bin, path, texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


@pytest.mark.binary
def test_a_model_folder_works(built, tokenmill_bin, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(open(built["gpt2"], "rb").read())
    assert encode_with_tokenmill(tokenmill_bin, str(folder), ["hello world"]) == [[31373, 995]]


def refusal(binary, path):
    r = subprocess.run([str(binary), "encode", "--tokenizer", str(path)], input=b"x\n", capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode().strip().splitlines()


@pytest.mark.binary
@pytest.mark.parametrize("edit,component", [
    (lambda d: d.__setitem__("normalizer", {"type": "NFD"}), "normalizer NFD"),
    (lambda d: d.__setitem__("normalizer", {"type": "Lowercase"}), "normalizer Lowercase"),
    (lambda d: d.__setitem__("pre_tokenizer", {"type": "Split", "pattern": {"Regex": "(?<=a)b"}, "behavior": "Isolated", "invert": False}), "pre_tokenizer Split"),
    (lambda d: d["model"].__setitem__("dropout", 0.1), "dropout"),
])
def test_unsupported_components_are_refused_by_name(edit, component, built, tokenmill_bin, tmp_path):
    d = json.load(open(built["gpt2"]))
    edit(d)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(d))
    code, out, err = refusal(tokenmill_bin, path)
    assert code == 2 and out == b"" and len(err) == 1 and component in err[0], err


def contexts(cp: int) -> str:
    c = chr(cp)
    return f"a{c}b {c}{c}1{c} A{c}'s\n{c} \t{c}\u0301{c}"


@pytest.mark.binary
@pytest.mark.parametrize("variant", ["gpt2-nfc", "gpt2-nfkc"])
def test_normalizing_code_points_agree_with_hf(variant, built, tokenmill_bin):
    """Unicode normalization (generated tables) agrees with the tokenizers library on every
    code point that normalization can change, in context (after letters, digits, spaces,
    next to a combining acute)."""
    path = built[variant]
    hf = tokenizers.Tokenizer.from_file(path)
    hf.encode_special_tokens = True
    # Every code point that normalization can touch (a decomposition, a combining class,
    # or part of a composition, in the newest Unicode Python knows), plus every 97th other
    # one; grouped 64 to a text.
    import random
    import unicodedata

    cps = [cp for cp in range(0x110000) if not 0xD800 <= cp < 0xE000 and (
        unicodedata.decomposition(chr(cp)) or unicodedata.combining(chr(cp))
        or unicodedata.normalize("NFKD", chr(cp)) != chr(cp) or cp % 97 == 0)]
    random.Random(7).shuffle(cps)
    blocks = [cps[i:i + 64] for i in range(0, len(cps), 64)]
    texts = ["\n".join(contexts(cp) for cp in b) for b in blocks]
    got = encode_with_tokenmill(tokenmill_bin, path, texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [b for b, g, w in zip(blocks, got, want) if g != w]
    if bad:
        singles = [contexts(cp) for cp in bad[0]]
        g1 = encode_with_tokenmill(tokenmill_bin, path, singles)
        first = [cp for cp, g, t in zip(bad[0], g1, singles) if g != hf.encode(t, add_special_tokens=False).ids]
        pytest.fail(f"{len(bad)} blocks differ; first code points: " + ", ".join(f"U+{cp:04X}" for cp in first[:10]))


@pytest.mark.binary
@pytest.mark.shared_data
def test_shared_anthropic_vocabulary_equals_hf(tokenmill_bin):
    """The NFKC + ByteLevel vocabulary in ../shared/vocab, on real texts."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared (next to the repository) is absent: the shared tokenizer.json test is skipped")
    path = root.parent / "vocab" / "anthropic-legacy.tokenizer.json"
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.encode_special_tokens = True
    texts = sample_shared() + ["Ｈｅｌｌｏ ﬁ ① é ㍿ ¼ x²", "<EOT> is text"]
    got = encode_with_tokenmill(tokenmill_bin, str(path), texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


@pytest.mark.binary
def test_a_token_no_merge_reaches_is_not_emitted_for_a_cut_part(tokenmill_bin, tmp_path):
    """With `ignore_merges`, `tokenizers` emits a vocabulary token directly only for a whole
    pre-token. Tokenmill cuts long and non-ASCII pieces where no token can span and merges
    the parts apart; a part whose bytes are a token is emitted whole only when the merges
    reach that token from its bytes. Here "xyz" is in the vocabulary but no merge makes it:
    in "éxyz" the part "xyz" must come out as x, y, z, as `tokenizers` gives it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from hf_convert import BYTE_ENCODER, as_string

    vocab = {BYTE_ENCODER[b]: b for b in range(256)}
    merges = [(BYTE_ENCODER[0xC3], BYTE_ENCODER[0xA9]), ("a", "b")]
    vocab[as_string("é".encode())] = 256
    vocab["ab"] = 257
    vocab["xyz"] = 258   # listed, but no merge produces it
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])   # Tokenmill wants an EOS
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    texts = ["éxyz", "xyz", " éxyz ab", "éabxyzé" * 3, "xyzéxyz"]
    want = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    assert want[0] == [256, vocab["x"], vocab["y"], vocab["z"]]
    assert want[1] == [258]   # a whole pre-token that is a token: emitted directly
    assert encode_with_tokenmill(tokenmill_bin, str(path), texts) == want


@pytest.mark.binary
def test_a_build_takes_eos_from_the_model_folder_or_the_spec_never_a_guess(built, tokenmill_bin, tmp_path):
    """A build with a tokenizer.json takes EOS from tokenizer_config.json,
    special_tokens_map.json or generation_config.json beside it, or from the spec's
    `"tokenizer": {"path", "eos"}`; with none of them it stops (exit 2) naming the key to
    set. Here the first special token is a BOS-like token (as DeepSeek's
    <｜begin▁of▁sentence｜> is), which a guess would have taken."""
    src = json.loads(open(built["gpt2"], encoding="utf-8").read())
    bos, eos = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"
    src["added_tokens"] = [
        {"id": 50257, "content": bos, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
        {"id": 50258, "content": eos, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
    ]
    (tmp_path / "data.jsonl").write_text(json.dumps({"text": "hello world"}) + "\n", encoding="utf-8")

    def attempt(tag, beside=None, spec_tokenizer=None):
        folder = tmp_path / tag
        folder.mkdir()
        (folder / "tokenizer.json").write_text(json.dumps(src), encoding="utf-8")
        for name, content in (beside or {}).items():
            (folder / name).write_text(json.dumps(content), encoding="utf-8")
        spec = tmp_path / f"{tag}.json"
        spec.write_text(json.dumps({
            "name": tag, "sources": [{"name": "d", "path": "data.jsonl", "map": {"text": "text"}}],
            "tokenizer": spec_tokenizer or f"{tag}/tokenizer.json", "template": "plain",
            "pack": {"seq_len": 64, "strategy": "none"}, "output": {"dir": f"out-{tag}"}}), encoding="utf-8")
        r = subprocess.run([str(tokenmill_bin), "build", str(spec), "--quiet"], capture_output=True)
        index = tmp_path / f"out-{tag}" / "index.json"
        return r, json.loads(index.read_text()) if index.is_file() else None

    r, _ = attempt("none")
    assert r.returncode == 2, r.stderr
    assert b"eos" in r.stderr and b"tokenizer_config.json" in r.stderr, r.stderr
    for tag, beside in [("config", {"tokenizer_config.json": {"eos_token": eos, "bos_token": bos}}),
                        ("map", {"special_tokens_map.json": {"eos_token": {"content": eos, "lstrip": False}}}),
                        ("generation", {"generation_config.json": {"bos_token_id": 50257, "eos_token_id": [50258]}})]:
        r, index = attempt(tag, beside)
        assert r.returncode == 0, r.stderr
        assert index["tokenizer"]["eos_id"] == 50258 and index["tokenizer"]["pad_id"] == 50258, (tag, index["tokenizer"])
    r, index = attempt("spec", spec_tokenizer={"path": "spec/tokenizer.json", "eos": eos})
    assert r.returncode == 0, r.stderr
    assert index["tokenizer"]["eos_id"] == 50258
    r, _ = attempt("wrong", spec_tokenizer={"path": "wrong/tokenizer.json", "eos": "</s>"})
    assert r.returncode == 2 and b"tokenizer.eos" in r.stderr, r.stderr
    # encode needs no EOS: the same file without any config still encodes.
    enc = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", str(tmp_path / "none" / "tokenizer.json")], input=b"hello world\n",
                         capture_output=True)
    assert enc.returncode == 0 and json.loads(enc.stdout) == [31373, 995], enc.stderr


@pytest.mark.binary
def test_a_tokenizer_json_build_carries_its_vocabulary(built, tokenmill_bin, tmp_path):
    """index.json names the copied tokenizer.json, so inspect decodes the build from any
    folder; verify (and the Python reader) check the copy against vocab_hash."""
    import shutil

    from tokenmill import Dataset, ShardError

    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(built["gpt2"], model / "tokenizer.json")
    (model / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}), encoding="utf-8")
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": "hello world"}) + "\n", encoding="utf-8")
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"name": "v", "sources": [{"name": "d", "path": "d.jsonl", "map": {"text": "text"}}], "tokenizer": "model",
                                "template": "plain", "pack": {"seq_len": 64, "strategy": "none"}, "output": {"dir": "out"}}), encoding="utf-8")
    subprocess.run([str(tokenmill_bin), "build", str(spec), "--quiet"], check=True)
    moved = tmp_path / "elsewhere"
    shutil.move(str(tmp_path / "out"), moved)
    shutil.rmtree(model)
    index = json.loads((moved / "index.json").read_text())
    assert index["tokenizer"]["file"] == "tokenizer.json"
    shown = subprocess.run([str(tokenmill_bin), "inspect", str(moved), "--seq", "0"], capture_output=True, cwd="/")
    assert shown.returncode == 0 and "hello world<|endoftext|>" in shown.stdout.decode(), shown.stderr
    assert subprocess.run([str(tokenmill_bin), "verify", str(moved)], capture_output=True).returncode == 0
    Dataset(str(moved), "train").verify()
    with open(moved / "tokenizer.json", "ab") as f:
        f.write(b" ")
    bad = subprocess.run([str(tokenmill_bin), "verify", str(moved)], capture_output=True)
    assert bad.returncode == 65 and b"vocab_hash" in bad.stderr, bad.stderr
    with pytest.raises(ShardError):
        Dataset(str(moved), "train").verify()


def outside_tokenizer(repo, name):
    path = repo.parent / "shared" / "outside" / "tokenizers" / f"{name}.json"
    if not path.is_file():
        pytest.skip("../shared/outside/tokenizers is absent (next to the repository): the tokenizer zoo test is skipped")
    return path


@pytest.mark.binary
@pytest.mark.parametrize("name", ["gpt-neox-20b-pii-special", "olmo-neox-dolma-v1_5", "falcon"])
def test_gpt_neox_family_and_falcon_encode_exactly(name, tokenmill_bin, repo):
    """GPT-NeoX-20B (Pythia, Dolly v2, RedPajama, StableLM-alpha, MPT) and OLMo-1: no token
    for bytes C0 C1 F5-FF (which UTF-8 never holds), and OLMo-1's whitespace-run added tokens
    listed in model.vocab as raw strings. Falcon: Punctuation, ByteLevel, then Digits and a
    Split on the byte-level alphabet, and no token for some control bytes (dropped, as
    `tokenizers` drops them). Ids equal `tokenizers`' on real text."""
    path = outside_tokenizer(repo, name)
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.encode_special_tokens = True
    texts = fixture_texts(repo) + sample_shared(600_000)
    texts += ["a" + " " * 30 + "b", "\t\t\t\tx", "    indented\n        more", "  \n\n\n  ", "Ünïcödé – “quotes” …",
              "x² + y³ = ¼ ½ ¾ ¹", "1234567 89 0001", "bell\x07 and\x03 esc\x1b[0m", "$1,000.50 (approx.)"]
    got = encode_with_tokenmill(tokenmill_bin, str(path), texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


def byte_level_char(b: int) -> str:
    """GPT-2's bytes_to_unicode for one byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    if b in printable:
        return chr(b)
    return chr(256 + sorted(set(range(256)) - set(printable)).index(b))


@pytest.mark.binary
def test_a_byte_without_a_token_is_dropped_as_tokenizers_drops_it(built, tokenmill_bin, tmp_path):
    """A vocabulary with no token for a byte that text can hold (Falcon lacks some control
    bytes): `tokenizers` drops the byte, its neighbours merging as if it were not there;
    encode does the same and says how many bytes it dropped."""
    data = json.loads(open(built["gpt2"], encoding="utf-8").read())
    hole = byte_level_char(3)
    vocab = data["model"]["vocab"]
    del vocab[hole]
    data["model"]["merges"] = [m for m in data["model"]["merges"]
                               if hole not in (m.split(" ") if isinstance(m, str) else m)]
    path = tmp_path / "holes.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.encode_special_tokens = True
    texts = ["a\x03b", "\x03", "x \x03y", "in\x03formation", "plain text", "\x03\x03 two"]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    out = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", str(path), "--field", "text"], input=payload,
                         capture_output=True, check=True)
    got = [json.loads(line) for line in out.stdout.decode().splitlines()]
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert got == want
    assert b"dropped 6 bytes" in out.stderr, out.stderr


@pytest.mark.binary
@pytest.mark.parametrize("behavior", ["isolated", "contiguous", "removed", "merged_with_previous", "merged_with_next"])
def test_punctuation_pre_tokenizer_equals_hf(behavior, tokenmill_bin, tmp_path, repo):
    """The Punctuation pre-tokenizer (ASCII punctuation or a Unicode P* category, every
    behaviour) before ByteLevel, as `tokenizers` splits."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Sequence([pre_tokenizers.Punctuation(behavior=behavior), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    path = build("gpt2", str(tmp_path), extra_pre=pre, tag=f"-punct-{behavior}")
    hf = tokenizers.Tokenizer.from_file(path)
    hf.encode_special_tokens = True
    texts = fixture_texts(repo) + ["Hello, world!!! (x) $5 + 3 = 8; a<b> c|d ~e `f` ^g", "“quoted” — dash… ¿qué? ¡sí! «guillemets»",
                                   "path/to/file.txt: line 3, col 4.", "!!!???...", "中文，标点。", "tab\t,\tcomma"]
    got = encode_with_tokenmill(tokenmill_bin, path, texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


@pytest.mark.binary
def test_a_build_counts_the_bytes_its_tokenizer_drops(built, tokenmill_bin, tmp_path):
    """A build whose text holds bytes the vocabulary has no token for (normalization off, so
    control characters stay): the documents are `tokenizers`' ids, and report.json's
    `dropped_bytes` counts what was dropped, per source."""
    data = json.loads(open(built["gpt2"], encoding="utf-8").read())
    hole = byte_level_char(3)
    del data["model"]["vocab"][hole]
    data["model"]["merges"] = [m for m in data["model"]["merges"] if hole not in (m.split(" ") if isinstance(m, str) else m)]
    (tmp_path / "holes.json").write_text(json.dumps(data), encoding="utf-8")
    texts = ["one\x03two", "no hole here", "\x03\x03\x03 three at the start"]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({
        "name": "holes", "sources": [{"name": "docs", "path": "docs.jsonl", "map": {"text": "text"}}],
        "normalize": False, "dedup": {"exact": False},
        "tokenizer": {"path": "holes.json", "eos": "<|endoftext|>"}, "template": "plain",
        "pack": {"seq_len": 64, "strategy": "none"}, "output": {"dir": "out"}}))
    run = subprocess.run([str(tokenmill_bin), "build", str(spec)], capture_output=True)
    assert run.returncode == 0, run.stderr
    assert b"dropped them" in run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["dropped_bytes"] == {"docs": 4}
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "holes.json"))
    hf.encode_special_tokens = True
    from tokenmill import Dataset
    ds = Dataset(str(tmp_path / "out"), "train")
    got = sorted(ds[i]["input_ids"].tolist() for i in range(len(ds)))
    want = sorted(hf.encode(t, add_special_tokens=False).ids + [50256] for t in texts)
    assert got == want


# What each file of ../shared/outside/tokenizers must do today (its MANIFEST.md says what
# a complete engine does): "exact", or refused naming this component.
ZOO = {
    "gpt2": "exact", "roberta-base": "exact", "phi-2": "exact", "whisper-large-v3": "exact", "falcon": "exact",
    "gpt-neox-20b-pii-special": "exact", "olmo-neox-dolma-v1_5": "exact", "olmo-dolma2": "exact",
    "phi-3-mini": "exact", "ortx-chatglm": "exact",
    # tokenizers itself cannot load these two (no reference): refused, never a crash.
    "llama2": "model.merges", "ortx-added-tokens": "model.merges: expected a list",
    "clip": "end_of_word_suffix", "t5-small": "model Unigram", "ortx-nmt": "model Unigram",
    "bert-base-uncased": "model WordPiece", "bge-large-en": "model WordPiece",
}


@pytest.mark.binary
def test_the_tokenizer_zoo_is_exact_or_refused_by_name(tokenmill_bin, repo):
    """Every tokenizer.json in ../shared/outside/tokenizers: ids equal `tokenizers`' on a
    mixed corpus, or a refusal (exit 2, nothing on stdout) naming the file and the first
    component that cannot be done exactly. The table above lists which is which."""
    folder = repo.parent / "shared" / "outside" / "tokenizers"
    if not folder.is_dir():
        pytest.skip("../shared/outside/tokenizers is absent (next to the repository): the tokenizer zoo test is skipped")
    files = sorted(p.stem for p in folder.glob("*.json"))
    assert set(files) == set(ZOO), f"the zoo changed: {sorted(set(files) ^ set(ZOO))}"
    texts = fixture_texts(repo)[:200] + sample_shared(200_000) + ["x² ¼", "tabs\t\tand  spaces", "混合 text 123"]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    report = {}
    for name in files:
        path = folder / f"{name}.json"
        run = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", str(path), "--field", "text"], input=payload,
                             capture_output=True)
        if ZOO[name] == "exact":
            assert run.returncode == 0, f"{name}: {run.stderr.decode()[-300:]}"
            hf = tokenizers.Tokenizer.from_file(str(path))
            hf.encode_special_tokens = True
            hf.no_truncation()  # gpt2.json carries a truncation block from being re-saved
            hf.no_padding()
            want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
            got = [json.loads(line) for line in run.stdout.decode().splitlines()]
            bad = sum(g != w for g, w in zip(got, want))
            assert len(got) == len(texts) and bad == 0, f"{name}: {bad} of {len(texts)} texts differ"
            report[name] = "exact"
        else:
            err = run.stderr.decode()
            assert run.returncode == 2 and not run.stdout, f"{name}: exit {run.returncode}"
            assert str(path) in err and ZOO[name] in err, f"{name}: {err}"
            report[name] = "refused: " + ZOO[name]
    print("\n".join(f"{k}: {v}" for k, v in report.items()))


@pytest.mark.binary
def test_allowed_special_tokens_strip_as_tokenizers_does(tokenmill_bin, repo):
    """With special tokens allowed in text, RoBERTa's `<mask>` (lstrip) takes the whitespace
    before it, as `tokenizers` matches it (`encode_special_tokens = False`)."""
    path = outside_tokenizer(repo, "roberta-base")
    hf = tokenizers.Tokenizer.from_file(str(path))
    hf.encode_special_tokens = False
    texts = ["Hello <mask> world <mask>!", "a  <mask>   b", "<mask>", " <mask>", "\t\n<mask>\n", "x<mask>y", "<mask> <mask>  <mask>",
             "中 <mask> 文", "</s> and <s> too <pad>", "no specials at all"]
    payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    out = subprocess.run([str(tokenmill_bin), "encode", "--tokenizer", str(path), "--field", "text", "--allowed-special", "all"],
                         input=payload, capture_output=True, check=True)
    got = [json.loads(line) for line in out.stdout.decode().splitlines()]
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert got == want


def sentencepiece_style(tmp_path, drop_bytes=(), fuse_unk=True):
    """A small SentencePiece-style BPE tokenizer.json (Llama 2's shape: Prepend("▁") +
    Replace(" ", "▁"), no pre-tokenizer, byte_fallback, <0xNN> tokens), made with
    `tokenizers` itself."""
    from tokenizers import Tokenizer, models, normalizers

    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-") + ["▁", "é", "中"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        if b not in drop_bytes:
            vocab[f"<0x{b:02X}>"] = len(vocab)
    for c in chars:
        vocab.setdefault(c, len(vocab))
    merges = []
    for a, b in [("▁", "t"), ("h", "e"), ("▁t", "he"), ("i", "n"), ("▁", "a"), ("e", "r"), ("▁", "in"), ("o", "n"), ("▁a", "n"),
                 ("▁an", "d"), ("▁", "▁"), ("▁▁", "▁▁"), ("e", "s"), ("t", "h"), ("▁", "th"), ("▁th", "e")]:
        vocab.setdefault(a + b, len(vocab))
        merges.append((a, b))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=fuse_unk))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    path = tmp_path / f"sp-{len(drop_bytes)}-{fuse_unk}.json"
    tok.save(str(path))
    return str(path)


@pytest.mark.binary
@pytest.mark.parametrize("drop,fuse", [((), True), (tuple(range(0xF0, 0x100)), True), (tuple(range(0xF0, 0x100)), False)])
def test_sentencepiece_style_bpe_equals_hf(drop, fuse, tokenmill_bin, tmp_path, repo):
    """byte_fallback (a character outside the vocabulary as its <0xNN> bytes), unknown
    characters (no byte tokens for 4-byte UTF-8: <unk>, fused or not), merges by rank over
    characters, leading and repeated spaces; exact against `tokenizers`."""
    path = sentencepiece_style(tmp_path, drop, fuse)
    hf = tokenizers.Tokenizer.from_file(path)
    hf.encode_special_tokens = True
    texts = fixture_texts(repo)[:300] + ["the and then", " the", "  two  spaces ", "héllo wörld", "中文 text 中", "😀😀 emoji 😀",
                                         "", "a", "tab\there\nnew line", "ÅÄÖ ß ﬁ", "the</s>the", "12,345.67!"]
    got = encode_with_tokenmill(tokenmill_bin, path, texts)
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
    assert not bad, f"{len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


@pytest.mark.binary
def test_phi3_encodes_exactly_with_special_tokens_allowed_too(tokenmill_bin, repo):
    """Phi-3-mini (Llama 2's SentencePiece-style vocabulary plus chat tokens with rstrip):
    exact on real text, and with special tokens allowed in text."""
    path = outside_tokenizer(repo, "phi-3-mini")
    texts = fixture_texts(repo) + sample_shared(400_000) + ["<|user|>\nHi<|end|>\n<|assistant|>\nHello</s>", "x </s>  y"]
    for allowed in (False, True):
        hf = tokenizers.Tokenizer.from_file(str(path))
        hf.encode_special_tokens = not allowed
        payload = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
        args = [str(tokenmill_bin), "encode", "--tokenizer", str(path), "--field", "text"] + (["--allowed-special", "all"] if allowed else [])
        out = subprocess.run(args, input=payload, capture_output=True, check=True)
        got = [json.loads(line) for line in out.stdout.decode().splitlines()]
        want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
        bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
        assert not bad, f"allowed={allowed}: {len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


def metaspace_variant(source, folder, scheme, split):
    """`source` (a SentencePiece-style file) as newer conversions write it (Mistral v0.3,
    Llama with `legacy: false`): no normalizer, a Metaspace pre-tokenizer."""
    d = json.loads(Path(source).read_text(encoding="utf-8"))
    d["normalizer"] = None
    d["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
    d["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": scheme, "split": split}
    path = folder / f"{Path(source).stem}-metaspace-{scheme}-{split}.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    return str(path)


METASPACE_TEXTS = ["", " ", "  two leading", "trailing  ", "a  b", "the and then", "héllo wörld 中文 😀", "\tTab", "▁pre", "x </s>  y",
                   "the</s>the", "</s> after"]


@pytest.mark.binary
@pytest.mark.parametrize("scheme", ["first", "always", "never"])
@pytest.mark.parametrize("split", [False, True])
def test_metaspace_sentencepiece_files_equal_hf(scheme, split, tokenmill_bin, tmp_path, repo):
    """A Metaspace pre-tokenizer instead of the Prepend/Replace normalizer: spaces as ▁,
    ▁ prepended to every piece between added tokens (`always`), to the piece at the start
    of the text only (`first`), or never, and not when the piece starts with ▁ already;
    with `split`, each ▁ starts a word. Exact against `tokenizers` on the small file and,
    with ../shared, on Phi-3-mini's vocabulary."""
    sources = [sentencepiece_style(tmp_path)]
    shared = repo.parent / "shared" / "outside" / "tokenizers" / "phi-3-mini.json"
    if shared.is_file():
        sources.append(str(shared))
    for source in sources:
        path = metaspace_variant(source, tmp_path, scheme, split)
        hf = tokenizers.Tokenizer.from_file(path)
        hf.encode_special_tokens = True
        texts = fixture_texts(repo)[:300] + METASPACE_TEXTS
        got = encode_with_tokenmill(tokenmill_bin, path, texts)
        want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
        bad = [(t, g, w) for t, g, w in zip(texts, got, want) if g != w]
        assert not bad, f"{Path(source).name}: {len(bad)} of {len(texts)} differ; first {bad[0][0][:60]!r}: {bad[0][1][:12]} vs {bad[0][2][:12]}"


SINGLE_WORD_TEXTS = [t.replace("hello", "hellö").replace("sing", "sïng") for t in [
    "hello world", "sayhello", "hello_there", "hello-there", "héllo hello", "中hello中", "hello!", "(hello)", "hellohello",
    "hello hello", "ahello hellob hello", "1hello", "hello1", "[SW] x[SW] [SW]y [SW]", " <x> a<x>  <x>b <x>", "ésing singing sing",
    "hello\u0301 hello", "x_hello hello_ ¹hello ½hello ⓐhello hello\u200d hello\u00b2", "", "hello"]]


@pytest.mark.binary
@pytest.mark.parametrize("kind", ["byte-level", "sentencepiece-style"])
def test_single_word_added_tokens_match_as_tokenizers_does(kind, built, tokenmill_bin, tmp_path):
    """`single_word` added tokens (special or not, normalized or not, with lstrip) count
    only where no word character touches them, and a match passed over is not searched
    again inside, as `tokenizers`' matcher does; with special tokens allowed and not."""
    d = json.load(open(built["gpt2"] if kind == "byte-level" else sentencepiece_style(tmp_path)))
    # Ids right after the last one (`tokenizers` renumbers added tokens past a gap).
    base = max(list(d["model"]["vocab"].values()) + [a["id"] for a in d["added_tokens"]]) + 1
    # (Contents the vocabulary lacks: `tokenizers` gives an added token that is also a
    # vocabulary entry the vocabulary's id.)
    entries = [("hellö", False, False, False), ("sïng", False, True, False), ("<x>", False, False, True), ("[SW]", True, False, False)]
    for k, (content, special, normalized, lstrip) in enumerate(entries):
        d["added_tokens"].append({"id": base + k, "content": content, "special": special, "single_word": True, "lstrip": lstrip,
                                  "rstrip": False, "normalized": normalized})
    if kind == "sentencepiece-style":
        for a in d["added_tokens"]:
            a["normalized"] = False   # normalized added tokens are refused with byte_fallback
    path = tmp_path / f"single-word-{kind}.json"
    path.write_text(json.dumps(d))
    for allowed in (False, True):
        hf = tokenizers.Tokenizer.from_file(str(path))
        hf.encode_special_tokens = not allowed
        payload = "".join(json.dumps({"text": t}) + "\n" for t in SINGLE_WORD_TEXTS).encode()
        args = [str(tokenmill_bin), "encode", "--tokenizer", str(path), "--field", "text"] + (["--allowed-special", "all"] if allowed else [])
        out = subprocess.run(args, input=payload, capture_output=True)
        assert out.returncode == 0, out.stderr
        got = [json.loads(line) for line in out.stdout.decode().splitlines()]
        want = [e.ids for e in hf.encode_batch(SINGLE_WORD_TEXTS, add_special_tokens=False)]
        bad = [(t, g, w) for t, g, w in zip(SINGLE_WORD_TEXTS, got, want) if g != w]
        assert not bad, f"allowed={allowed}: {len(bad)} differ; first {bad[0]!r}"
        # The texts did exercise the rule: some single_word tokens matched, some were passed over.
        flat = [i for ids in want for i in ids]
        assert base in flat and flat.count(base) < sum(t.count("hellö") for t in SINGLE_WORD_TEXTS)

"""The fixed harness: corpus split, corpus errors, tokenizers and the exactness of evaluate_bpb."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import prepare

CPU = torch.device("cpu")


class FixedDistribution(torch.nn.Module):
    """Predicts the same next-token distribution at every position, whatever the input."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = log_probs

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.log_probs.expand(*idx.shape, -1).clone()


def uniform(vocab_size: int) -> FixedDistribution:
    return FixedDistribution(torch.zeros(vocab_size))


# ---------------------------------------------------------------------------
# evaluate_bpb
# ---------------------------------------------------------------------------


def test_uniform_byte_model_scores_exactly_8_bits_per_byte() -> None:
    corpus = prepare.load_embedded()
    tok = prepare.ByteTokenizer()
    tokens = tok.encode(corpus.val_text(prepare.EVAL_BYTES["cpu"]))
    bpb = prepare.evaluate_bpb(uniform(256), tokens, tok.token_bytes(), 256, 16, CPU)
    assert f"{bpb:.3f}" == "8.000"
    assert abs(bpb - 8.0) < 1e-6


def test_bpb_matches_a_hand_computed_cross_entropy_and_ignores_batch_shape() -> None:
    text = prepare.load_embedded().val_text(5000)
    tok = prepare.ByteTokenizer()
    tokens = tok.encode(text)
    gen = torch.Generator().manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(256, generator=gen), dim=0)
    model = FixedDistribution(log_probs)
    targets = tokens[1:].astype(np.int64)
    expected = -log_probs.double().numpy()[targets].sum() / (math.log(2) * len(targets))
    # 5000 tokens: windows of 64 leave a short tail window, which must be scored too.
    results = [
        prepare.evaluate_bpb(model, tokens, tok.token_bytes(), seq, batch, CPU)
        for seq, batch in [(64, 1), (64, 7), (333, 4), (4999, 1)]
    ]
    for bpb in results:
        assert abs(bpb - expected) < 1e-6, (bpb, expected)


def test_bpe_bpb_divides_by_the_bytes_of_the_target_tokens(tmp_path: Path) -> None:
    corpus = prepare.load_embedded()
    tok = prepare.BPETokenizer.train(corpus.train_text_iter(), 1024)
    assert tok.vocab_size == 1024
    text = corpus.val_text(20_000)
    tokens = tok.encode(text)
    assert len(tokens) < len(text) / 2  # merges really happened
    # Every token except the first is a target, so the targets hold all bytes but the first
    # token's, counted here from tiktoken's own view of the token, not the harness's table.
    first = len(tok.enc.decode_single_token_bytes(int(tokens[0])))
    target_bytes = len(text.encode("utf-8")) - first
    expected = (len(tokens) - 1) * math.log(1024) / (math.log(2) * target_bytes)
    bpb = prepare.evaluate_bpb(uniform(1024), tokens, tok.token_bytes(), 128, 8, CPU)
    assert abs(bpb - expected) < 1e-6
    assert bpb < 5.0  # 10 bits per token, spread over more than 2 bytes per token
    # Saved and reloaded, the tokenizer encodes identically (the on-disk cache).
    tok.save(tmp_path / "bpe.json")
    again = prepare.BPETokenizer.load(tmp_path / "bpe.json")
    assert np.array_equal(again.encode(text), tokens)
    assert again.decode(tokens) == text


def test_evaluate_bpb_is_deterministic_for_a_real_model_and_restores_train_mode() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(256, 16), torch.nn.Linear(16, 256))
    model.train()
    tok = prepare.ByteTokenizer()
    tokens = tok.encode(prepare.load_embedded().val_text(4096))
    a = prepare.evaluate_bpb(model, tokens, tok.token_bytes(), 100, 4, CPU)
    b = prepare.evaluate_bpb(model, tokens, tok.token_bytes(), 100, 4, CPU)
    assert a == b
    assert model.training


class PrefixMean(torch.nn.Module):
    """A causal model: logits at t from the mean embedding of tokens 0..t; ``peek`` adds the
    embedding of token t+1 (the classic lookahead leak), ``whole`` the mean of the window."""

    def __init__(self, vocab: int, leak: str = "") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab, 16)
        self.head = torch.nn.Linear(16, vocab)
        self.leak = leak

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        e = self.embed(idx)
        counts = torch.arange(1, idx.size(1) + 1, dtype=e.dtype)[None, :, None]
        h = e.cumsum(1) / counts
        if self.leak == "peek":  # token t+1 (none after the last position)
            h = h + torch.nn.functional.pad(e[:, 1:], (0, 0, 0, 1))
        elif self.leak == "whole":
            h = h + e.mean(1, keepdim=True)
        return self.head(h)


def _val_bytes(n: int) -> np.ndarray:
    return prepare.ByteTokenizer().encode(prepare.load_embedded().val_text(n))


def test_the_causality_check_passes_causal_models_and_names_lookahead() -> None:
    tokens = _val_bytes(4096)
    for causal in (PrefixMean(256), uniform(256)):
        assert prepare.causality_violation(causal, tokens, 256, 128, CPU) is None
    for leak in ("peek", "whole"):
        why = prepare.causality_violation(PrefixMean(256, leak), tokens, 256, 128, CPU)
        assert why is not None and why.startswith(
            "non-causal: predictions at position 0 changed when tokens after 0 changed"
        ), why
    # Short streams and windows longer than the stream are checked too, never skipped.
    why = prepare.causality_violation(PrefixMean(256, "peek"), tokens[:40], 256, 128, CPU)
    assert why is not None and "non-causal" in why
    # Under bfloat16 autocast (train.py on a GPU) the tolerance widens to a few rounding
    # steps: a causal model still passes, a leak is still caught.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert prepare.causality_violation(PrefixMean(256), tokens, 256, 128, CPU) is None
        why = prepare.causality_violation(PrefixMean(256, "peek"), tokens, 256, 128, CPU)
    assert why is not None and why.startswith("non-causal: predictions at position 0")


def test_evaluate_bpb_reports_to_the_result_file_and_stops_a_lookahead_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = _val_bytes(4096)
    token_bytes = prepare.ByteTokenizer().token_bytes()
    result = tmp_path / "result.json"
    monkeypatch.setenv(prepare.RESULT_ENV, str(result))
    bpb = prepare.evaluate_bpb(PrefixMean(256), tokens, token_bytes, 128, 4, CPU)
    assert json.loads(result.read_text()) == {"metric": "val_bpb", "value": bpb}
    result.unlink()
    model = PrefixMean(256, "peek")
    model.train()
    with pytest.raises(prepare.NonCausalError, match="^non-causal: predictions at position 0"):
        prepare.evaluate_bpb(model, tokens, token_bytes, 128, 4, CPU)
    assert model.training, "train mode is restored on the way out"
    (line,) = result.read_text().splitlines()
    entry = json.loads(line)
    assert entry["metric"] == "val_bpb" and entry["error"].startswith("non-causal: ")
    assert "value" not in entry
    monkeypatch.delenv(prepare.RESULT_ENV)
    prepare.evaluate_bpb(PrefixMean(256), tokens, token_bytes, 128, 4, CPU)
    assert len(result.read_text().splitlines()) == 1, "nothing is written when unset"


# ---------------------------------------------------------------------------
# The embedded corpus and its split
# ---------------------------------------------------------------------------


def test_embedded_split_is_deterministic_and_disjoint_by_play() -> None:
    first, second = prepare.load_embedded(), prepare.load_embedded()
    assert first.key == second.key
    assert [n for n, _ in first.val] == [n for n, _ in second.val]
    assert [n for n, _ in first.train] == [n for n, _ in second.train]
    val_names = [n for n, _ in first.val]
    train_names = [n for n, _ in first.train]
    assert val_names == list(prepare.EMBEDDED_VAL_WORKS)
    assert not set(val_names) & set(train_names)
    assert len(val_names) + len(train_names) == 42
    # Whole plays: every held-out play is absent from the training text, line for line.
    train_text = "\n".join(t for _, t in first.train)
    for _, text in first.val:
        distinctive = [line for line in text.splitlines() if len(line) > 60][:50]
        assert distinctive and not any(line in train_text for line in distinctive)
    # The scored text is the start of the held-out plays, the same on every call.
    val = first.val_text(prepare.EVAL_BYTES["cpu"])
    assert val == second.val_text(prepare.EVAL_BYTES["cpu"])
    assert len(val.encode()) == prepare.EVAL_BYTES["cpu"]
    share = prepare.EVAL_BYTES["cpu"] // len(first.val)
    for _, text in first.val:  # every held-out play contributes its opening
        assert text[: share - 10] in val
    assert first.val_text(10**9) == prepare.DOC_SEPARATOR.join(t for _, t in first.val)


def test_text_directory_split_is_deterministic_whatever_the_file_order(tmp_path: Path) -> None:
    names = [f"doc{i:02d}.txt" for i in range(25)]
    for order, root in ((names, tmp_path / "a"), (names[::-1], tmp_path / "b")):
        root.mkdir()
        for name in order:
            (root / name).write_text(f"text of {name}\n" * 20)
    a = prepare.load_path(tmp_path / "a")
    b = prepare.load_path(tmp_path / "b")
    assert [n for n, _ in a.val] == [n for n, _ in b.val]
    assert len(a.val) == round(25 * prepare.VAL_FRACTION)
    assert {n for n, _ in a.val}.isdisjoint(n for n, _ in a.train)
    assert len(a.val) + len(a.train) == 25


def test_parquet_shards_hold_out_the_last_shard(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for shard in range(3):
        rows = [f"shard {shard} row {i} " * 10 for i in range(30)] + [""]
        pq.write_table(
            pa.table({"text": rows, "id": list(range(31))}), tmp_path / f"{shard}.parquet"
        )
    corpus = prepare.load_path(tmp_path)
    assert {n.split("#")[0] for n, _ in corpus.val} == {"2.parquet"}
    assert {n.split("#")[0] for n, _ in corpus.train} == {"0.parquet", "1.parquet"}
    assert len(corpus.train) == 60  # empty rows are skipped


def test_missing_corpus_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "corpus"
    with pytest.raises(prepare.CorpusError, match=str(missing)):
        prepare.load_corpus(missing)


def test_corpus_errors_name_the_offending_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad_text = tmp_path / "txt"
    bad_text.mkdir()
    (bad_text / "good.txt").write_text("fine\n")
    (bad_text / "latin1.txt").write_bytes(b"caf\xe9 au lait\n")
    with pytest.raises(prepare.CorpusError, match=r"latin1\.txt.*not UTF-8"):
        prepare.load_path(bad_text)
    assert (bad_text / "latin1.txt").read_bytes() == b"caf\xe9 au lait\n"  # left untouched

    no_column = tmp_path / "pq"
    no_column.mkdir()
    pq.write_table(pa.table({"content": ["a", "b", "c"]}), no_column / "s.parquet")
    with pytest.raises(prepare.CorpusError, match=r"s\.parquet has no 'text' column"):
        prepare.load_path(no_column)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "x.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(prepare.CorpusError, match=r"x\.parquet"):
        prepare.load_path(corrupt)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(prepare.CorpusError, match=str(empty)):
        prepare.load_path(empty)

    a_file = tmp_path / "file.txt"
    a_file.write_text("one document")
    with pytest.raises(prepare.CorpusError, match=r"not a directory: .*file\.txt"):
        prepare.load_path(a_file)


def test_bpe_tokenizer_is_cached_per_corpus(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LABSWARM_CACHE_DIR", str(tmp_path))
    corpus = prepare.load_embedded()
    tok = prepare.get_tokenizer("bpe", 512, corpus)
    cached = tmp_path / f"bpe-{corpus.key}-512.json"
    assert cached.exists()
    stamp = cached.stat().st_mtime_ns
    again = prepare.get_tokenizer("bpe", 512, corpus)
    assert cached.stat().st_mtime_ns == stamp  # read back, not retrained
    assert again.ranks == tok.ranks


def test_diverged_flags_nan_inf_and_exploding_losses() -> None:
    assert prepare.diverged(float("nan"), 256)
    assert prepare.diverged(float("inf"), 256)
    assert prepare.diverged(2.5 * math.log(256), 256)
    assert not prepare.diverged(math.log(256), 256)
    assert not prepare.diverged(1.2, 256)


def test_a_damaged_bpe_cache_is_rebuilt(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LABSWARM_CACHE_DIR", str(tmp_path))
    corpus = prepare.load_embedded()
    cached = tmp_path / f"bpe-{corpus.key}-300.json"
    cached.write_text("{not json")
    tok = prepare.get_tokenizer("bpe", 300, corpus)
    assert tok.vocab_size == 300
    assert str(cached) in capsys.readouterr().err
    assert prepare.BPETokenizer.load(cached).ranks == tok.ranks


def test_prepare_cli_prints_the_corpus_and_its_split(capsys) -> None:
    assert prepare.main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "train: 38 documents" in out
    assert "val: 4 documents: hamlet_gut, twelfth_night_gut, tempest_gut, julius_caesar_gut" in out
    assert f"{prepare.EVAL_BYTES['cpu']} bytes" in out


def test_prepare_cli_reports_a_bad_corpus_path(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LABSWARM_CORPUS", str(tmp_path / "gone"))
    assert prepare.main([]) == 2
    assert str(tmp_path / "gone") in capsys.readouterr().err


def test_the_embedded_corpus_matches_its_provenance_note() -> None:
    import hashlib
    import json
    import lzma

    data_dir = prepare.EMBEDDED_CORPUS.parent
    note = (data_dir / "PROVENANCE.md").read_text()
    digest = hashlib.sha256(prepare.EMBEDDED_CORPUS.read_bytes()).hexdigest()
    assert digest in note
    works = [
        json.loads(line)
        for line in lzma.decompress(prepare.EMBEDDED_CORPUS.read_bytes()).decode().splitlines()
    ]
    assert len(works) == 42
    for work in works:  # every work is listed with its text's hash
        text_hash = hashlib.sha256(work["text"].encode()).hexdigest()[:16]
        assert f"| `{work['name']}.txt` |" in note and text_hash in note

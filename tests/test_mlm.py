"""Masked-LM corruption (rates, 80/10/10, whole words, protected special and tag tokens) and the
packing of text into fixed-length sequences that start with [CLS] and the language tag."""

import pytest

torch = pytest.importorskip("torch")

from lrl.train.pretrain_config import MaskingConfig  # noqa: E402
from lrl.train.pretrain_mlm import IGNORE, MaskVocab, mask_batch, step_generator  # noqa: E402

TEXTS = {
    "ug": ["مالاي ئېيىقى بىر خىل ھايۋان", "ئۇيغۇرچە ۋىكىپىدىيە ماقالىسى"] * 30,
    "wo": ["Wolof làkk la ci Senegaal", "Dakar mooy péeyu Senegaal"] * 30,
}


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer

    tok = train_tokenizer(TEXTS, TokenizerConfig(vocab_size=120, min_frequency=1))
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(str(path))
    return str(path)


def _vocab(tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    return tok, MaskVocab.from_tokenizer(tok)


def test_tag_tokens_are_protected(tok_dir):
    tok, vocab = _vocab(tok_dir)
    for t in ("[ug]", "[wo]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"):
        assert tok.convert_tokens_to_ids(t) in vocab.protected


def test_rates_and_protection():
    vocab = MaskVocab(mask_id=4, vocab_size=200, protected=(0, 1, 2, 3, 4, 5, 6))
    ids = torch.randint(7, 200, (256, 64))
    ids[:, 0], ids[:, 1], ids[:, -1] = 2, 5, 3  # [CLS] [tag] ... [SEP]
    cfg = MaskingConfig(rate=0.15)
    out, labels = mask_batch(ids, cfg, vocab, step_generator(0, 1, 0))
    selected = labels != IGNORE
    assert not selected[:, [0, 1, -1]].any()
    assert torch.equal(out[:, [0, 1, -1]], ids[:, [0, 1, -1]])
    assert selected.float().mean().item() == pytest.approx(0.15 * 61 / 64, abs=0.01)
    assert torch.equal(labels[selected], ids[selected])
    n = selected.sum().item()
    masked = (out[selected] == 4).sum().item() / n
    kept = (out[selected] == ids[selected]).sum().item() / n
    assert masked == pytest.approx(0.8, abs=0.03)
    assert kept == pytest.approx(0.1 + 0.9 / 200, abs=0.03)  # kept, or random drew the same id
    assert not torch.isin(out[selected & (out != 4)], torch.tensor(vocab.protected)).any()


def test_masks_are_reproducible_by_step():
    vocab = MaskVocab(mask_id=4, vocab_size=50, protected=(0, 1, 2, 3, 4))
    ids = torch.randint(5, 50, (8, 32))
    a = mask_batch(ids, MaskingConfig(), vocab, step_generator(3, 10, 1))
    b = mask_batch(ids, MaskingConfig(), vocab, step_generator(3, 10, 1))
    c = mask_batch(ids, MaskingConfig(), vocab, step_generator(3, 11, 1))
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])


def test_whole_word_masking_takes_all_pieces():
    vocab = MaskVocab(mask_id=4, vocab_size=100, protected=(0, 1, 2, 3, 4))
    ids = torch.randint(5, 100, (64, 60))
    starts = torch.zeros_like(ids)
    starts[:, ::3] = 1  # words of three pieces
    _, labels = mask_batch(ids, MaskingConfig(rate=0.3, whole_word=True), vocab, step_generator(0, 0, 0), starts)
    sel = (labels != IGNORE).view(64, 20, 3)
    assert sel.any()
    assert torch.equal(sel.all(dim=2), sel.any(dim=2))  # a word is selected whole or not at all
    assert sel[:, :, 0].float().mean().item() == pytest.approx(0.3, abs=0.04)


def test_pack_batch_prepends_cls_and_language_tag(tok_dir):
    from lrl.train.pretrain_data import pack_batch

    tok, _ = _vocab(tok_dir)
    texts = TEXTS["ug"][:6] + TEXTS["wo"][:6]
    langs = ["ug"] * 6 + ["wo"] * 6
    out = pack_batch({"text": texts, "lang": langs}, tok_dir, 16, ["ug", "wo"])
    ids = out["input_ids"]
    assert ids.shape[1] == 16 and set(out["lang_id"].tolist()) == {0, 1}
    for row, lid in zip(ids, out["lang_id"]):
        assert row[0] == tok.cls_token_id
        assert row[1] == tok.convert_tokens_to_ids(["[ug]", "[wo]"][lid])
        n = int((row != tok.pad_token_id).sum())
        assert row[n - 1] == tok.sep_token_id
    # every piece of the input is in the packed stream exactly once
    pieces = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert int(out["n_tokens"].sum()) - 3 * len(ids) == pieces


@pytest.mark.parametrize("rows_per_batch", [24, 5])  # 5: blocks of several batches each
def test_driver_packing_gives_the_ray_data_sequences_in_the_same_order(tok_dir, ray_session, rows_per_batch):
    """Small inputs are packed in the driver (pretrain.driver_pack_rows): the dataset must hold
    the sequences the Ray Data tasks make, in the same order and with the same column types."""
    import numpy as np
    import pyarrow as pa

    from lrl.train.pretrain_data import packed_dataset

    texts = [t for pair in zip(TEXTS["ug"], TEXTS["wo"]) for t in pair]  # languages interleaved
    table = pa.table({"text": texts, "lang": ["ug", "wo"] * (len(texts) // 2)})
    via_ray = packed_dataset(table, tok_dir, 16, ["ug", "wo"], rows_per_batch=rows_per_batch, driver_rows=0)
    local = packed_dataset(table, tok_dir, 16, ["ug", "wo"], rows_per_batch=rows_per_batch,
                           driver_rows=len(texts))
    a = via_ray.take_batch(batch_size=10**6, batch_format="numpy")
    b = local.take_batch(batch_size=10**6, batch_format="numpy")
    assert local.count() == via_ray.count() > 5
    for key in ("input_ids", "word_start", "lang_id", "n_tokens"):
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
    # grouped by language within each batch only, not across the table (epoch order)
    assert int((np.diff(b["lang_id"]) != 0).sum()) >= 3
    t1 = next(iter(via_ray.iter_torch_batches(batch_size=4)))
    t2 = next(iter(local.iter_torch_batches(batch_size=4)))
    assert t1["input_ids"].shape == t2["input_ids"].shape == (4, 16)


def test_mlm_head_only_at_masked_positions_gives_the_dense_loss():
    from transformers import BertConfig, BertForMaskedLM

    from lrl.train.pretrain_aux import build_module

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64)).eval()
    module = build_module(model, 3)
    ids = torch.randint(5, 100, (4, 16))
    labels = torch.where(torch.rand(4, 16) < 0.3, ids, torch.full_like(ids, IGNORE))
    with torch.no_grad():
        sparse = module(ids, torch.ones_like(ids), labels)
        dense = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        none = module(ids, torch.ones_like(ids), torch.full_like(ids, IGNORE))
    assert sparse.item() == pytest.approx(dense.item(), abs=1e-5)
    assert none.item() == 0.0  # nothing masked: a zero loss, not NaN


def test_packed_languages_are_spread_through_the_batch(tok_dir):
    """A batch's sequences came out grouped by language (all ug, then all wo); the loop's local
    shuffle buffer (8 micro batches) could not break up such runs, so a short run trained on one
    language only (stream token share 1.0 / 0.0 against a 0.75 / 0.25 target). Every prefix of
    the packed output now holds each language in proportion (within one sequence)."""
    import numpy as np

    from lrl.train.pretrain_data import pack_batch

    texts = TEXTS["ug"][:24] + TEXTS["wo"][:8]
    out = pack_batch({"text": texts, "lang": ["ug"] * 24 + ["wo"] * 8}, tok_dir, 16, ["ug", "wo"])
    lid = out["lang_id"]
    share = float(np.mean(lid == 1))
    for k in range(1, len(lid) + 1):
        assert abs(int((lid[:k] == 1).sum()) - share * k) <= 1, lid.tolist()


def test_mask_seeds_differ_across_steps_ranks_and_micro_batches():
    """The linear mix gave rank 70's micro batch 6 the masks of rank 0 one step later."""
    from lrl.train.pretrain_mlm import step_seed

    seeds = {step_seed(0, step, rank, micro) for step in range(40) for rank in range(128) for micro in range(8)}
    assert len(seeds) == 40 * 128 * 8
    assert step_seed(0, 1, 70, 6) != step_seed(0, 2, 0, 0)


def _is_punct(piece: str) -> bool:
    import unicodedata

    text = piece.lstrip("▁")  # punctuation as the pre-tokenizers see it (BERT's: ASCII symbols too)
    return bool(text) and all(unicodedata.category(c).startswith("P") or (c.isascii() and not c.isalnum())
                              for c in text)


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_whole_word_masking_on_uyghur_text_masks_every_piece_of_a_word(kind, tmp_path, data_root):
    """Packed real Uyghur text: the ``word_start`` column marks where words begin as the pieces
    themselves say (WordPiece: no ``##``; Unigram: a ``▁`` piece; punctuation is a word of its own
    in both pre-tokenizers), and whole-word masking selects every piece of a word or none."""
    from transformers import AutoTokenizer

    from lrl.model.config import TokenizerConfig
    from lrl.model.tokenizer import train_tokenizer
    from lrl.train.pretrain_data import pack_batch

    lines = [ln for ln in (data_root / "mono" / "ug.txt").read_text(encoding="utf-8").splitlines()[:800]
             if ln.strip() and not ln.startswith("# doc")]
    train_tokenizer({"ug": lines}, TokenizerConfig(type=kind, vocab_size=600)).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    out = pack_batch({"text": lines[:200], "lang": ["ug"] * 200}, str(tmp_path), 64, ["ug"])
    ids, starts = torch.as_tensor(out["input_ids"]).long(), torch.as_tensor(out["word_start"])
    vocab = MaskVocab.from_tokenizer(tok)
    _, labels = mask_batch(ids, MaskingConfig(rate=0.3, whole_word=True), vocab, step_generator(0, 1, 0), starts)
    selected = labels != IGNORE
    protected = torch.isin(ids, torch.tensor(vocab.protected))

    def continues(prev: str, piece: str) -> bool:
        if kind == "wordpiece":
            return piece.startswith("##")
        return not piece.startswith("▁") and not _is_punct(piece) and not _is_punct(prev)

    pairs = together = 0
    for r, row in enumerate(ids.tolist()):
        pieces = tok.convert_ids_to_tokens(row)
        for j in range(2, len(row)):
            if protected[r, j]:
                continue
            if protected[r, j - 1]:
                # the tail of a word cut at a sequence boundary: it shares the (protected) tag's
                # draw, so it is selected on its own, like a word
                continue
            cont = continues(pieces[j - 1], pieces[j])
            assert int(starts[r, j]) == int(not cont), (pieces[j - 2: j + 1], starts[r, j - 2: j + 1].tolist())
            if cont:
                pairs += 1
                assert selected[r, j] == selected[r, j - 1], pieces[j - 2: j + 1]
                together += int(selected[r, j])
    assert pairs > 1000 and together > 200  # many multi-piece words, hundreds of them masked whole
    assert selected[~protected].float().mean().item() == pytest.approx(0.3, abs=0.05)


def test_language_embedding_reaches_the_forward_pass(tok_dir):
    """With ``lang_embedding`` each sequence's language id goes in as its token types (every
    position), and the MLM loss trains exactly the rows of the languages in the batch."""
    import numpy as np
    from transformers import AutoTokenizer

    from lrl.model.build import build_mlm_model, lang_ids
    from lrl.model.config import ModelConfig
    from lrl.train.pretrain_aux import build_module
    from lrl.train.pretrain_data import pack_batch
    from lrl.train.pretrain_eval import model_inputs

    tok = AutoTokenizer.from_pretrained(tok_dir)
    langs = ["am", "ug", "wo"]  # "am" has no text here: its row must get no gradient
    assert list(lang_ids(langs)) == langs
    out = pack_batch({"text": TEXTS["ug"][:4] + TEXTS["wo"][:4], "lang": ["ug"] * 4 + ["wo"] * 4}, tok_dir, 16, langs)
    ids, lid = torch.as_tensor(out["input_ids"]), torch.as_tensor(out["lang_id"])
    assert set(lid.tolist()) == {1, 2}
    batch, n = model_inputs(ids, torch.as_tensor(out["word_start"]), lid, tok.pad_token_id, MaskingConfig(rate=0.5),
                            MaskVocab.from_tokenizer(tok), step_generator(0, 1, 0), "cpu", True)
    assert n > 0 and torch.equal(batch["token_type_ids"], lid.long().view(-1, 1).expand_as(ids))
    plain, _ = model_inputs(ids, torch.as_tensor(out["word_start"]), lid, tok.pad_token_id, MaskingConfig(rate=0.5),
                            MaskVocab.from_tokenizer(tok), step_generator(0, 1, 0), "cpu", False)
    assert "token_type_ids" not in plain
    torch.manual_seed(0)
    model = build_mlm_model(ModelConfig(preset="tiny", lang_embedding=True, max_length=16, dropout=0.0), tok, langs)
    module = build_module(model, 0)
    module(**batch).backward()
    grad = model.bert.embeddings.token_type_embeddings.weight.grad
    assert grad.shape[0] == 3 and not grad[0].any() and grad[1].abs().sum() > 0 and grad[2].abs().sum() > 0
    with torch.no_grad():  # the languages' rows change the loss (all else equal)
        swapped = dict(batch, token_type_ids=np.int64(3) - batch["token_type_ids"])
        assert module(**swapped).item() != pytest.approx(module(**batch).item(), abs=1e-6)


def test_aux_tagging_arrays_label_the_first_piece_of_each_ud_word(tok_dir, data_root):
    """The auxiliary task's inputs from the real Uyghur treebank: ``[CLS] [ug] pieces [SEP]``, the
    word's XPOS (or UPOS) on its first piece only, every word labelled unless cut by seq_len."""
    from transformers import AutoTokenizer

    from lrl.data.conllu import read_conllu, tag_set
    from lrl.train.pretrain_aux import tagging_arrays

    tok = AutoTokenizer.from_pretrained(tok_dir)
    sents = read_conllu(str(data_root / "ud" / "ug" / "dev.conllu"))[:30]
    for column in ("xpos", "upos"):
        labels = tag_set(sents, column)
        arr = tagging_arrays(sents, column, labels, tok, tok.convert_tokens_to_ids("[ug]"), 48)
        assert arr["input_ids"].shape == arr["labels"].shape == (30, 48)
        for row, sent in enumerate(sents):
            ids = arr["input_ids"][row].tolist()
            assert ids[:2] == [tok.cls_token_id, tok.convert_tokens_to_ids("[ug]")]
            firsts = []  # position of each word's first piece, from the tokenizer word by word
            at = 2
            for w in sent.words:
                firsts.append(at)
                at += len(tok(w, add_special_tokens=False)["input_ids"])
            kept = [(p, t) for p, t in zip(firsts, sent.tags(column)) if p < 48 - 1]
            got = {p: labels[x] for p, x in enumerate(arr["labels"][row].tolist()) if x != IGNORE}
            if at <= 48 - 1:  # the whole sentence fits: every word labelled, [SEP] after it
                assert got == dict(kept) and ids[at] == tok.sep_token_id
            else:
                assert got == {p: t for p, t in kept if p in got} and len(got) >= len(kept) - 1

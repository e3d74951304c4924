"""Offline tokenizers and the `tokenize` op: ByT5's byte convention, any tokenizer.json through the
`tokenizers` library, fixed-length output with the end-of-text token kept, one-line errors."""

import numpy as np
import pytest

from frx.config import ConfigError
from frx.data import tokenizers
from frx.data.pp import make_pipeline


def test_bytes_follow_byt5s_convention_pad_0_eos_1_and_byte_plus_3():
    ids = tokenizers.ByteTokenizer().encode("hé!", 8)
    # UTF-8 of "hé!" is 68 c3 a9 21: each byte b becomes b + 3, then eos (1), then pad (0)
    assert ids.tolist() == [0x68 + 3, 0xC3 + 3, 0xA9 + 3, 0x21 + 3, 1, 0, 0, 0]
    assert ids.dtype == np.int32 and tokenizers.ByteTokenizer.vocab_size == 259


def test_a_truncated_caption_still_ends_in_eos():
    ids = tokenizers.ByteTokenizer().encode("a long caption", 5)
    assert ids.tolist() == [ord("a") + 3, ord(" ") + 3, ord("l") + 3, ord("o") + 3, 1]


def test_the_op_reads_text_writes_tokens_and_passes_records_without_a_caption():
    fn = make_pipeline("tokenize(6)").host_fn()
    out = fn({"text": "ab", "image": "kept"}, np.random.default_rng(0))
    assert out["tokens"].tolist() == [100, 101, 1, 0, 0, 0] and out["image"] == "kept"
    assert fn({"image": 1, "label": 3}, np.random.default_rng(0)) == {"image": 1, "label": 3}  # a labelled set
    other = make_pipeline("tokenize(4, key='caption', outkey='ids', lower=True)").host_fn()
    assert other({"caption": b"AB"}, None)["ids"].tolist() == [100, 101, 1, 0]


def _write_tokenizer_json(path) -> str:
    """A word-level tokenizer with BERT-style [CLS] ... [SEP] special tokens and [PAD] padding, written by
    the `tokenizers` library itself (what a saved Hugging Face tokenizer.json is)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4, "red": 5, "square": 6, "photo": 7, "of": 8}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.save(str(path))
    return str(path)


def test_a_tokenizer_json_encodes_as_the_library_does_truncated_with_its_special_tokens(tmp_path):
    path = _write_tokenizer_json(tmp_path / "tokenizer.json")
    tok = tokenizers.make_tokenizer(path)
    assert tok.vocab_size == 9 and tok.pad_id == 0
    assert tok.encode("a red square", 8).tolist() == [2, 4, 5, 6, 3, 0, 0, 0]
    assert tok.encode("a photo of a red square", 5).tolist() == [2, 4, 7, 8, 3]  # [SEP] kept at the end
    assert tok.encode("a blue square", 6).tolist() == [2, 4, 1, 6, 3, 0]  # unknown word
    fn = make_pipeline(f"tokenize(6, tokenizer={path!r})").host_fn()
    assert fn({"text": "red square"}, None)["tokens"].tolist() == [2, 5, 6, 3, 0, 0]


def test_tokenize_ops_pickle_for_worker_processes(tmp_path):
    import pickle

    path = _write_tokenizer_json(tmp_path / "tokenizer.json")
    op = tokenizers.tokenize(5, tokenizer=path)
    op({"text": "a red square"}, None)
    copy = pickle.loads(pickle.dumps(op))
    assert copy({"text": "a photo of a red square"}, None)["tokens"].tolist() == [2, 4, 7, 8, 3]


@pytest.mark.parametrize("pp, message", [
    ("tokenize(1)", "at least 2 tokens"),
    ("tokenize(8, tokenizer='/nowhere/tokenizer.json')", "tokenizer file '/nowhere/tokenizer.json' not found"),
])
def test_bad_tokenize_arguments_give_one_line_errors(pp, message):
    with pytest.raises(ConfigError, match=message) as info:
        make_pipeline(pp)
    assert "\n" not in str(info.value)

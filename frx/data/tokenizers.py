"""Tokenizers that need no network, and the `tokenize` host op that turns a caption into token ids.

    byte                      ByT5's convention, no file: pad 0, eos 1, unk 2, byte b -> b + 3
                              (vocabulary 259; transformers `ByT5Tokenizer`: offset 3, 2**8 bytes)
    /path/to/tokenizer.json   any Hugging Face tokenizer, read by the `tokenizers` library from a
                              local file (e.g. one saved next to a model, or trained on your captions)

`tokenize(length, tokenizer="byte", key="text", outkey="tokens")` writes exactly `length` int32 ids:
- byte: the UTF-8 bytes, then eos; a longer caption keeps its first length - 1 bytes and ends in
  eos (open_clip forces the last token of a truncated caption to end-of-text the same way); pad 0.
- tokenizer.json: the library's own encoding, special tokens included (its post-processor, e.g.
  CLIP's <|startoftext|> ... <|endoftext|>), truncated by the library to `length` (which keeps the
  special tokens) and padded with the tokenizer's pad id (its padding settings, else a <pad>/[PAD]
  token, else 0).
A record without the caption field (a labelled evaluation set) passes through unchanged; the task's
batch schema says where tokens are required. `lower=True` lower-cases captions first (open_clip's
default cleaning does).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from frx.config import ConfigError
from frx.data.op_registry import host_op


class ByteTokenizer:
    """UTF-8 bytes as tokens (ByT5): pad 0, eos 1, unk 2 (unused: every byte has an id), byte b -> b + 3."""

    name = "byte"
    vocab_size = 259
    pad_id, eos_id, unk_id = 0, 1, 2
    offset = 3

    def encode(self, text: str, length: int) -> np.ndarray:
        ids = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + self.offset
        ids = np.append(ids[: length - 1], np.int32(self.eos_id))
        return np.pad(ids, (0, length - len(ids)), constant_values=self.pad_id).astype(np.int32)

    def __repr__(self) -> str:
        return "ByteTokenizer()"


class HuggingFaceTokenizer:
    """A Hugging Face `tokenizer.json` read from a local path (no hub access)."""

    def __init__(self, path: str):
        if not os.path.isfile(path):
            raise ConfigError(f"tokenizer file {path!r} not found; pass tokenize(..., tokenizer='byte') or the path "
                              "of a Hugging Face tokenizer.json")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ConfigError("reading a tokenizer.json needs the `tokenizers` package: pip install tokenizers") \
                from None
        try:
            self._tokenizer = Tokenizer.from_file(path)
        except Exception as e:  # the library raises a bare Exception on a malformed file
            raise ConfigError(f"cannot read tokenizer {path!r}: {e}") from None
        self.name, self.path = os.path.basename(path), path
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        self.pad_id = self._pad_id()
        self._tokenizer.no_padding()
        self._length = None

    def _pad_id(self) -> int:
        padding = self._tokenizer.padding
        if padding:
            return int(padding["pad_id"])
        for token in ("<pad>", "[PAD]", "<|pad|>"):
            found = self._tokenizer.token_to_id(token)
            if found is not None:
                return int(found)
        return 0

    def encode(self, text: str, length: int) -> np.ndarray:
        if self._length != length:  # the library truncates with its special tokens kept
            self._tokenizer.enable_truncation(max_length=length)
            self._length = length
        ids = np.asarray(self._tokenizer.encode(text).ids, np.int32)[:length]
        return np.pad(ids, (0, length - len(ids)), constant_values=self.pad_id).astype(np.int32)

    def __getstate__(self):  # the Rust tokenizer pickles; its truncation setting is re-applied lazily
        return {**self.__dict__, "_length": None}

    def __repr__(self) -> str:
        return f"HuggingFaceTokenizer({self.path!r})"


def make_tokenizer(spec: str) -> ByteTokenizer | HuggingFaceTokenizer:
    """"byte" or the path of a tokenizer.json."""
    if spec == "byte":
        return ByteTokenizer()
    return HuggingFaceTokenizer(os.path.expanduser(spec))


@dataclasses.dataclass
class TokenizeOp:
    """The `tokenize` op: record[outkey] = the int32 ids of record[key] (see the module docstring)."""

    tokenizer: ByteTokenizer | HuggingFaceTokenizer
    length: int
    key: str = "text"
    outkey: str = "tokens"
    lower: bool = False

    def __call__(self, record: dict, rng) -> dict:
        del rng
        if self.key not in record:
            return record
        text = record[self.key]
        text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)
        return {**record, self.outkey: self.tokenizer.encode(text.lower() if self.lower else text, self.length)}


@host_op("tokenize", keyed=False)
def tokenize(length: int, tokenizer: str = "byte", key: str = "text", outkey: str = "tokens",
             lower: bool = False) -> TokenizeOp:
    """Caption -> `length` int32 token ids (frx.data.tokenizers)."""
    if not isinstance(length, int) or length < 2:
        raise ConfigError(f"tokenize needs a length of at least 2 tokens (room for eos), got {length!r}")
    return TokenizeOp(make_tokenizer(tokenizer), length, key, outkey, bool(lower))

"""The tokenizer a text model's file carries, checked against its manifest: what turns a
request's strings into the model's token ids (functions/runtime/text_input.py's `TextFeeds`)."""

from __future__ import annotations

import onnxruntime as ort

from functions.runtime.errors import ModelUnavailable
from functions.runtime.manifest import ModelManifest
from functions.runtime.text_input import TextFeeds, TextInput, text_input


def text_feeds(manifest: ModelManifest, session: ort.InferenceSession) -> TextFeeds | None:
    """The tokenizer a text model's file carries; None for other models. A text model
    published before tokenizers were embedded takes token ids only: its feeds say so."""
    text = text_input(manifest)
    if text is None:
        return None
    # The tokenizers' modules (~2 ms of a start) for text models only.
    from functions.runtime import hf_tokenizer
    from functions.runtime.tokenizer import METADATA_KEY, TokenizerError, Vocabulary

    metadata = session.get_modelmeta().custom_metadata_map
    if manifest.preprocessing.get("tokenizer") == hf_tokenizer.KIND:
        return hf_text_feeds(manifest, text, metadata.get(hf_tokenizer.METADATA_KEY))
    raw = metadata.get(METADATA_KEY)
    ref = f"{manifest.name}:{manifest.version}"
    if raw is None:
        return TextFeeds(text, None, ref)
    try:
        vocabulary = Vocabulary.from_json(raw)
    except TokenizerError as exc:
        raise ModelUnavailable(
            f"{ref}: its tokenizer cannot be read: {exc}",
            public_message=f"model {ref} has a broken tokenizer and is not served",
        ) from exc
    size = manifest.preprocessing.get("vocab_size", len(vocabulary.tokens))
    if size != len(vocabulary.tokens) or vocabulary.max_length != text.max_length:
        raise ModelUnavailable(
            f"{ref}: its tokenizer ({len(vocabulary.tokens)} tokens, max_length "
            f"{vocabulary.max_length}) does not match its manifest ({size}, {text.max_length})",
            public_message=f"model {ref} does not match its manifest",
        )
    return TextFeeds(text, vocabulary, ref)


def hf_text_feeds(manifest: ModelManifest, text: TextInput, document: str | None) -> TextFeeds:
    """The Hugging Face tokenizer a model published with `--tokenizer` carries in its file."""
    from functions.runtime import hf_tokenizer

    ref = f"{manifest.name}:{manifest.version}"
    if document is None:
        raise ModelUnavailable(
            f"{ref}: its manifest names a Hugging Face tokenizer but its file carries none",
            public_message=f"model {ref} does not match its manifest",
        )
    spec = manifest.input(text.input)
    width = spec.shape[1] if spec is not None and spec.rank == 2 and spec.shape[1] > 0 else None
    inputs = hf_tokenizer.HfInputs.from_preprocessing(manifest.preprocessing, text.input)
    # Publish records the padding it checked the model on; a manifest without it was published
    # when serving right-padded whatever the file said, and its model was checked on that only.
    own_padding = "padding" in manifest.preprocessing
    # A fixed length in the file pads to the batch's longest only where publish saw the model
    # answer the same both ways (manifests before 2026-12-02's second change pad to the length).
    to_longest = bool(manifest.preprocessing.get("pad_to_longest"))
    try:
        tokenizer = hf_tokenizer.HfTokenizer(
            document, text.max_length, inputs, width, own_padding, to_longest
        )
    except hf_tokenizer.HfTokenizerError as exc:
        raise ModelUnavailable(
            f"{ref}: {exc}", public_message=f"model {ref} cannot load its tokenizer here"
        ) from exc
    return TextFeeds(text, tokenizer, ref)

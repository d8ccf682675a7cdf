"""The GPT-2 backbones: offline tokenizer, deterministic tiny model, loading from a local directory."""

from __future__ import annotations

import torch
from pepler_gpt2 import GPT2_SMALL, GPT2_TINY, bundled_tokenizer_dir


def test_bundled_tokenizer_is_gpt2s_bpe():
    tokenizer = GPT2_TINY.load_tokenizer()
    assert len(tokenizer) == 50257
    assert tokenizer.eos_token_id == 50256
    assert tokenizer.tokenize("restaurant") == ["rest", "aur", "ant"]
    assert len(tokenizer.tokenize("room")) == 1
    assert (bundled_tokenizer_dir() / "LICENSE").is_file()


def test_tiny_model_is_the_same_on_every_build_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = GPT2_TINY.load_model()
    after = torch.rand(1)
    second = GPT2_TINY.load_model()
    assert torch.equal(before, after)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert GPT2_TINY.embedding_width(first) == 128
    assert first.config.n_layer == 2


def test_pretrained_loading_from_a_local_directory(tmp_path):
    # The same code path users take with the hub, pointed at a directory: no network needed.
    model = GPT2_TINY.load_model()
    model.save_pretrained(tmp_path)
    GPT2_TINY.load_tokenizer().save_pretrained(tmp_path)
    loaded = GPT2_SMALL.load_model(str(tmp_path))
    tokenizer = GPT2_SMALL.load_tokenizer(str(tmp_path))
    assert tokenizer.tokenize("restaurant") == ["rest", "aur", "ant"]
    ids = torch.tensor([[464, 2119, 318]])
    assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-5)


def test_tuned_weights_round_trip_through_safetensors(tmp_path):
    model = GPT2_TINY.load_model()
    with torch.no_grad():
        model.transformer.wte.weight.add_(
            0.5
        )  # tied to the output layer: must be written once, read back tied
    GPT2_TINY.save_tuned(model, tmp_path / "backbone.safetensors")
    fresh = GPT2_TINY.load_model()
    GPT2_TINY.load_tuned(fresh, tmp_path / "backbone.safetensors")
    assert torch.equal(fresh.transformer.wte.weight, model.transformer.wte.weight)
    assert fresh.lm_head.weight.data_ptr() == fresh.transformer.wte.weight.data_ptr()
    assert not (tmp_path / "backbone.safetensors").read_bytes().startswith(b"\x80")  # not a pickle

"""Hugging Face transformers adapters against hand-built masked embeddings.

A BERT-style classifier and a GPT-2-style causal LM, both from small configs at random init,
with a tokenizer built in code from a word list: nothing is downloaded.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
hf = pytest.importorskip("jinter.integrations.hf")
transformers = pytest.importorskip("transformers")

from jinter import log_odds  # noqa: E402

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "was", "not", "good", "bad",
         "very", "a", "film", "great", "plot"]
SENTENCE = "the movie was not very good"


def _log_odds_np(logits, y):
    others = np.delete(logits, y, axis=-1)
    m = others.max(-1)
    return logits[..., y] - (m + np.log(np.exp(others - m[..., None]).sum(-1)))


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]")


def _bert(num_labels=3):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32, num_labels=num_labels)
    return transformers.BertForSequenceClassification(cfg).eval()


def _gpt2():
    torch.manual_seed(1)
    cfg = transformers.GPT2Config(vocab_size=len(WORDS), n_embd=16, n_layer=2, n_head=2, n_positions=32,
                                  bos_token_id=2, eos_token_id=3)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _hand_embeds(model, ids, positions, mask_vec):
    """All masked embedding matrices, built by hand: row p takes mask_vec iff p is player i
    and bit i of the mask is unset."""
    with torch.no_grad():
        e = model.get_input_embeddings()(torch.tensor(ids)[None])[0]
    n = len(positions)
    out = e[None].repeat(2**n, 1, 1)
    for s in range(2**n):
        for i, p in enumerate(positions):
            if not (s >> i) & 1:
                out[s, p] = mask_vec
    return out


def test_bert_classifier_mask_embedding_matches_hand_built(tokenizer):
    ids = tokenizer(SENTENCE)["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    model = _bert().double()
    game = hf.mask_tokens_at_embeddings(model, ids, tokenizer=tokenizer, output_shape=(3,))
    positions = list(range(1, len(ids) - 1))  # [CLS] and [SEP] are not players
    assert game.positions == tuple(positions) and game.players.n == 6
    mask_vec = model.get_input_embeddings().weight[tokenizer.mask_token_id].detach()
    np.testing.assert_array_equal(game.baseline, mask_vec.numpy())
    v = game.masked_outputs(reward=log_odds(2))
    assert v.shape == (64,) and v.dtype == jnp.float64
    embeds = _hand_embeds(model, ids, positions, mask_vec)
    with torch.no_grad():
        ref = _log_odds_np(model(inputs_embeds=embeds).logits.numpy(), 2)
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-12)
    for s in (0, 5, 63):
        np.testing.assert_array_equal(game.masked_inputs(s), embeds[s].numpy())
    # the full sentence is the model on the token ids; ∅ masks every word but [CLS]/[SEP]
    with torch.no_grad():
        full = model(input_ids=torch.tensor(ids)[None]).logits.numpy()
        masked_ids = [ids[0]] + [tokenizer.mask_token_id] * 6 + [ids[-1]]
        empty = model(input_ids=torch.tensor(masked_ids)[None]).logits.numpy()
    np.testing.assert_allclose(v[-1], _log_odds_np(full, 2)[0], rtol=1e-12)
    np.testing.assert_allclose(v[0], _log_odds_np(empty, 2)[0], rtol=1e-12)


def test_bert_float32_gives_float64_v_and_custom_mask(tokenizer):
    ids = tokenizer(SENTENCE)["input_ids"]
    model = _bert()  # float32 parameters
    vec = np.linspace(-0.5, 0.5, 16)
    game = hf.mask_tokens_at_embeddings(model, ids, positions=[1, 2, 4, 6], mask_embedding=vec, batch_size=7)
    v = game.masked_outputs(reward=log_odds(0))
    assert v.dtype == jnp.float64
    embeds = _hand_embeds(model, ids, [1, 2, 4, 6], torch.tensor(vec, dtype=torch.float32))
    with torch.no_grad():
        ref = _log_odds_np(model(inputs_embeds=embeds).logits.double().numpy(), 0)
    np.testing.assert_allclose(v, ref, rtol=1e-5, atol=1e-6)
    # a token id as the mask embedding
    game_id = hf.mask_tokens_at_embeddings(model, ids, positions=[1, 2], mask_embedding=tokenizer.unk_token_id)
    np.testing.assert_array_equal(game_id.baseline, model.get_input_embeddings().weight[1].detach().numpy())


def test_gpt2_last_token_logprob_matches_hand_built(tokenizer):
    ids = tokenizer(SENTENCE, add_special_tokens=False)["input_ids"]  # 6 words, no specials
    model = _gpt2().double()
    target = WORDS.index("film")
    zero = np.zeros(16)
    game = hf.mask_tokens_at_embeddings(model, ids, positions=range(5), mask_embedding=zero,
                                        output=hf.last_token_logprob(target), output_shape=())
    v = game.masked_outputs()
    assert v.shape == (32,) and v.dtype == jnp.float64
    embeds = _hand_embeds(model, ids, list(range(5)), torch.zeros(16, dtype=torch.float64))
    with torch.no_grad():
        ref = torch.log_softmax(model(inputs_embeds=embeds).logits[:, -1], -1)[:, target].numpy()
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-12)
    assert np.all(v < 0)  # log-probabilities
    # right padding: the default last position would read a pad token's logits: refused, with the fix
    padded = list(ids) + [0, 0]
    with pytest.raises(ValueError, match=r"reads position -1 \(index 7\), where attention_mask is 0.*position=5"):
        hf.mask_tokens_at_embeddings(model, padded, positions=range(5), mask_embedding=zero,
                                     attention_mask=[1] * 6 + [0, 0], output=hf.last_token_logprob(target))
    game = hf.mask_tokens_at_embeddings(model, padded, positions=range(5), mask_embedding=zero,
                                        attention_mask=[1] * 6 + [0, 0], output=hf.last_token_logprob(target, 5))
    np.testing.assert_allclose(game.masked_outputs(), v, rtol=1e-9, atol=1e-9)


def test_hf_errors(tokenizer):
    ids = tokenizer(SENTENCE)["input_ids"]
    bert = _bert()
    game = hf.mask_tokens_at_embeddings(bert, ids, tokenizer=tokenizer, output_shape=(4,))
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\).*expected \(2, 4\)"):
        game.masked_outputs(reward=log_odds(0))
    with pytest.raises(ValueError, match="no mask embedding"):
        hf.mask_tokens_at_embeddings(_gpt2(), ids)
    with pytest.raises(ValueError, match=r"embedding size \(16,\)"):
        hf.mask_tokens_at_embeddings(bert, ids, mask_embedding=np.zeros(8))
    with pytest.raises(ValueError, match="training mode"):
        hf.mask_tokens_at_embeddings(_bert().train(), ids, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="one sequence"):
        hf.mask_tokens_at_embeddings(bert, [ids, ids], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="vocabulary"):
        hf.mask_tokens_at_embeddings(bert, [0, 99], tokenizer=tokenizer)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        hf.mask_tokens_at_embeddings(_gpt2(), ids, mask_embedding=0, output=hf.last_token_logprob(99),
                                     output_shape=()).masked_outputs()
    with pytest.raises(TypeError, match="target_token_id must be an int"):
        hf.last_token_logprob(1.5)
    with pytest.raises(ValueError, match="position 40 is outside the sequence of"):
        hf.mask_tokens_at_embeddings(_gpt2(), ids, mask_embedding=0, output=hf.last_token_logprob(1, position=40),
                                     output_shape=()).masked_outputs()
    with pytest.raises(ValueError, match="mask_embedding must be finite"):
        hf.mask_tokens_at_embeddings(bert, ids, mask_embedding=np.full(16, np.nan))
    with pytest.raises(ValueError, match="attention_mask must hold 0 and 1 only"):
        hf.mask_tokens_at_embeddings(bert, ids, tokenizer=tokenizer, attention_mask=[0.5] * len(ids))
    encoding = tokenizer(SENTENCE)  # a BatchEncoding is read for its input_ids
    assert hf.mask_tokens_at_embeddings(bert, encoding, tokenizer=tokenizer).input_ids.tolist() == list(ids)


def test_scaled_word_embeddings_mask_like_the_masked_ids():
    """A token-id mask embedding goes through the embedding layer like x, so a model that scales
    its word embeddings (Bart here) gives v(∅) = the model on the all-masked ids."""
    torch.manual_seed(0)
    cfg = transformers.BartConfig(vocab_size=50, d_model=16, decoder_layers=1, encoder_layers=1,
                                  decoder_attention_heads=2, encoder_attention_heads=2, decoder_ffn_dim=32,
                                  encoder_ffn_dim=32, max_position_embeddings=32, scale_embedding=True)
    lm = transformers.BartForCausalLM(cfg).eval()
    ids = [5, 7, 9, 11, 13]
    v = hf.mask_tokens_at_embeddings(lm, ids, mask_embedding=3, output=hf.last_token_logprob(4)).masked_outputs()
    with torch.no_grad():
        empty = lm(torch.tensor([[3] * 5])).logits[0, -1].double().log_softmax(-1)[4].item()
        full = lm(torch.tensor([ids])).logits[0, -1].double().log_softmax(-1)[4].item()
    assert float(v[0]) == pytest.approx(empty, abs=1e-6) and float(v[-1]) == pytest.approx(full, abs=1e-6)

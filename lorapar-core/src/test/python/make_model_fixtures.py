#!/usr/bin/env python3
"""Makes the model test fixtures of lorapar-core (src/test/resources/fixtures/models).

Tiny random-weight decoders built with transformers, saved with save_pretrained (fp32; one bf16
copy), plus reference outputs computed in float64 on the CPU from the very same weights:

  <name>/model/...                 the Hugging Face folder (config.json, safetensors, index when sharded)
  <name>/reference.safetensors     single.{i}.input_ids / single.{i}.logits       (no padding)
                                   batch.input_ids / attention_mask / position_ids (the prompts left padded;
                                     their logits are the single.{i}.logits: eager attention in float64
                                     gives NaN on fully masked pad rows, so no padded reference is taken)
                                   loss.input_ids / labels / attention_mask / per_example / logits (right padded)
                                   greedy.{i}.sequences / greedy.{i}.logprobs (HF generate, one prompt at a time)
                                   rope.inv_freq
  tokenizers/encodings.json        encodings of the real tokenizers in ./tok (when present)

Usage (on the machine with torch + transformers; tokenizers to record are looked for in ./tok/<name>/):
  mkdir -p /work/main/.gen/tok/{llama2,qwen3}
  cp make_model_fixtures.py /work/main/.gen/
  cp /work/shared/tokenizers/llama2/tokenizer*.json /work/main/.gen/tok/llama2/   (same for qwen3)
  device run, carry [".gen"]:
    cd .gen && PYTHONUNBUFFERED=1 python3 make_model_fixtures.py $OUT/fx && cd $OUT && tar czf fixtures.tgz fx
  then unpack fx/{llama,llama_bf16,qwen2,mistral,tokenizers} into src/test/resources/fixtures/models/.
Made with torch 2.11.0+cu130, transformers 5.17.0 (see fixtures/models/gen.log), on the CPU, in ~25 s.
The byte-level tokenizer of the tiny models comes from make_byte_tokenizer.py (no dependencies).
"""
import copy
import json
import os
import sys
import traceback

import torch

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
LOG = open(os.path.join(OUT, "gen.log"), "w")


def say(*a):
    print(*a)
    print(*a, file=LOG)
    LOG.flush()


import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

say("torch", torch.__version__, "transformers", transformers.__version__)
V5 = int(transformers.__version__.split(".")[0]) >= 5
torch.backends.cuda.matmul.allow_tf32 = False

VOCAB, BOS, EOS, PAD = 320, 256, 257, 258
NEW_TOKENS = 8
PROMPTS = [
    [BOS, 17, 99, 3, 250, 42],
    [BOS, 5, 6, 7, 8, 9, 200, 201, 77, 31],
    [BOS, 120, 64],
]
# training batch: prompt + answer, labels -100 on the prompt
TRAIN = [
    ([BOS, 10, 20, 30], [40, 50, 60, EOS]),
    ([BOS, 11, 12], [13, 14, 15, 16, 17, 18, EOS]),
    ([BOS, 1, 2, 3, 4, 5, 6], [7, EOS]),
]


def common(**kw):
    c = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
             rms_norm_eps=1e-5, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
             initializer_range=0.2)
    c.update(kw)
    return c


def rope_kwargs(theta, scaling=None):
    """Both spellings: transformers 5 (rope_parameters) first when running on 5, then 4's."""
    p = {"rope_type": "default", "rope_theta": theta}
    if scaling:
        p = dict(scaling, rope_theta=theta)
    v5 = {"rope_parameters": p}
    v4 = {"rope_theta": theta}
    if scaling:
        v4["rope_scaling"] = scaling
    return [v5, v4] if V5 else [v4, v5]


def build(cls_cfg, cls_model, seed, rope, **kw):
    cfg = None
    for alt in rope:
        try:
            cfg = cls_cfg(**common(**kw, **alt))
            break
        except Exception:  # noqa: BLE001
            say(cls_cfg.__name__, "rejected", alt, traceback.format_exc())
    if cfg is None:
        raise RuntimeError("no rope spelling accepted by " + cls_cfg.__name__)
    try:
        cfg._attn_implementation = "eager"
    except Exception as e:  # noqa: BLE001
        say("could not force eager attention:", e)
    torch.manual_seed(seed)
    model = cls_model(cfg).float().eval()
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def left_pad(seqs):
    t = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), t), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, t - len(s):] = torch.tensor(s)
        mask[i, t - len(s):] = 1
    return ids, mask


def positions(mask):
    pos = mask.long().cumsum(-1) - 1
    pos.masked_fill_(mask == 0, 1)
    return pos


def references(model, label, rope_from=None):
    """Reference outputs of `model` (any dtype) computed in float64 on the CPU.

    rope_from: a model whose rotary inv_freq to use (a bf16 copy's buffer was rounded to bf16 by
    .to(bfloat16); from_pretrained(dtype=bfloat16) keeps it in float32, and so does lorapar).
    """
    ref = copy.deepcopy(model).to("cpu").double().eval()
    if rope_from is not None:
        for b in ("inv_freq", "original_inv_freq"):
            if hasattr(ref.model.rotary_emb, b):
                getattr(ref.model.rotary_emb, b).copy_(getattr(rope_from.model.rotary_emb, b).double())
    out = {}
    with torch.no_grad():
        for i, p in enumerate(PROMPTS):
            ids = torch.tensor([p])
            out[f"single.{i}.input_ids"] = ids[0]
            out[f"single.{i}.logits"] = ref(input_ids=ids).logits[0].float()
        ids, mask = left_pad(PROMPTS)
        pos = positions(mask)
        out["batch.input_ids"] = ids
        out["batch.attention_mask"] = mask
        out["batch.position_ids"] = pos

        # right-padded training batch, per-example mean cross-entropy over answer tokens
        t = max(len(a) + len(b) for a, b in TRAIN)
        tids = torch.full((len(TRAIN), t), PAD, dtype=torch.long)
        tmask = torch.zeros((len(TRAIN), t), dtype=torch.long)
        labels = torch.full((len(TRAIN), t), -100, dtype=torch.long)
        for i, (a, b) in enumerate(TRAIN):
            n = len(a) + len(b)
            tids[i, :n] = torch.tensor(a + b)
            tmask[i, :n] = 1
            labels[i, len(a):n] = torch.tensor(b)
        logits = ref(input_ids=tids, attention_mask=tmask, position_ids=positions(tmask)).logits
        sl = logits[:, :-1, :]
        tl = labels[:, 1:]
        ce = torch.nn.functional.cross_entropy(sl.reshape(-1, sl.shape[-1]), tl.reshape(-1),
                                               ignore_index=-100, reduction="none").view(tl.shape)
        cnt = (tl != -100).sum(-1)
        out["loss.input_ids"] = tids
        out["loss.attention_mask"] = tmask
        out["loss.labels"] = labels
        out["loss.per_example"] = (ce.sum(-1) / cnt).float()
        out["loss.logits"] = logits.float()

        try:
            rope = ref.model.rotary_emb
            out["rope.inv_freq"] = rope.inv_freq.float().clone()
            say(label, "inv_freq", rope.inv_freq.tolist(), "attention_scaling", getattr(rope, "attention_scaling", None))
        except Exception as e:  # noqa: BLE001
            say(label, "no rotary_emb.inv_freq:", e)

        for i, p in enumerate(PROMPTS):
            try:
                pid = torch.tensor([p])
                g = ref.generate(input_ids=pid, attention_mask=torch.ones_like(pid), do_sample=False,
                                 num_beams=1, max_new_tokens=NEW_TOKENS, eos_token_id=EOS, pad_token_id=PAD,
                                 output_scores=True, output_logits=True, return_dict_in_generate=True)
                steps = g.logits if getattr(g, "logits", None) is not None else g.scores
                new = g.sequences[0, pid.shape[1]:]
                lp = torch.stack([torch.log_softmax(s[0].double(), -1) for s in steps], 0)  # n, V
                tok_lp = lp.gather(-1, new[:lp.shape[0]].unsqueeze(-1)).squeeze(-1)
                out[f"greedy.{i}.sequences"] = g.sequences[0].clone()
                out[f"greedy.{i}.logprobs"] = tok_lp.float()
                say(label, "greedy", i, new.tolist(), tok_lp.tolist())
            except Exception:  # noqa: BLE001
                say(label, "generate failed:\n" + traceback.format_exc())
    return {k: v.contiguous() for k, v in out.items()}


def save(model, name, shard=None):
    d = os.path.join(OUT, name, "model")
    os.makedirs(d, exist_ok=True)
    if shard:
        try:
            model.save_pretrained(d, max_shard_size=shard)
        except Exception:  # noqa: BLE001
            say(name, "sharded save failed, saving one file:\n" + traceback.format_exc())
            model.save_pretrained(d)
    else:
        model.save_pretrained(d)
    # the folder as a user would have it: a generation config with the special tokens
    gen = os.path.join(d, "generation_config.json")
    if not os.path.exists(gen):
        with open(gen, "w") as f:
            json.dump({"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}, f, indent=2)
    say(name, "files", sorted(os.listdir(d)))
    with open(os.path.join(d, "config.json")) as f:
        say(name, "config.json", f.read())


def emit(model, name, shard=None, rope_from=None):
    try:
        save(model, name, shard)
        save_file(references(model, name, rope_from), os.path.join(OUT, name, "reference.safetensors"))
    except Exception:  # noqa: BLE001
        say(name, "FAILED:\n" + traceback.format_exc())


LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}

# 1. LLaMA: GQA 4/2, untied head, llama3 rope scaling; plus a bf16 copy of the same weights
try:
    llama = build(transformers.LlamaConfig, transformers.LlamaForCausalLM, 1,
                  rope_kwargs(10000.0, LLAMA3), tie_word_embeddings=False)
    emit(llama, "llama")
    emit(copy.deepcopy(llama).to(torch.bfloat16), "llama_bf16", rope_from=llama)
except Exception:  # noqa: BLE001
    say("llama FAILED:\n" + traceback.format_exc())

# 2. Qwen2: GQA 4/2, q/k/v bias, tied embeddings, sharded checkpoint
try:
    qwen = build(transformers.Qwen2Config, transformers.Qwen2ForCausalLM, 2,
                 rope_kwargs(1000000.0), tie_word_embeddings=True, use_sliding_window=False,
                 rms_norm_eps=1e-6)
    emit(qwen, "qwen2", shard="150KB")
except Exception:  # noqa: BLE001
    say("qwen2 FAILED:\n" + traceback.format_exc())

# 3. Mistral: one key/value head (MQA), explicit head_dim 32 != hidden/heads, untied
try:
    mistral = build(transformers.MistralConfig, transformers.MistralForCausalLM, 3,
                    rope_kwargs(10000.0), num_key_value_heads=1, head_dim=32, sliding_window=None,
                    tie_word_embeddings=False)
    emit(mistral, "mistral")
except Exception:  # noqa: BLE001
    say("mistral FAILED:\n" + traceback.format_exc())

# 4. Real tokenizers: encodings from the tokenizers library (what DJL wraps) and from transformers
TEXTS = [
    "Hello world",
    "  leading spaces and\ttabs\nnew line",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "数学 123 émigré — naïve café",
    "<|im_start|>user\nHi there<|im_end|>\n",
    "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST]",
    "",
]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
here = os.path.dirname(os.path.abspath(__file__))
encs = {"texts": TEXTS}
for tname in ("llama2", "qwen3"):
    tdir = os.path.join(here, "tok", tname)
    if not os.path.isdir(tdir):
        say("no tokenizer", tdir)
        continue
    rec = {}
    try:
        from tokenizers import Tokenizer
        tk = Tokenizer.from_file(os.path.join(tdir, "tokenizer.json"))
        rec["raw_with_special"] = [tk.encode(t, add_special_tokens=True).ids for t in TEXTS]
        rec["raw_without_special"] = [tk.encode(t, add_special_tokens=False).ids for t in TEXTS]
        rec["raw_decoded"] = [tk.decode(ids, skip_special_tokens=True) for ids in rec["raw_without_special"]]
    except Exception:  # noqa: BLE001
        say(tname, "tokenizers FAILED:\n" + traceback.format_exc())
    try:
        at = transformers.AutoTokenizer.from_pretrained(tdir)
        rec["hf_with_special"] = [at(t, add_special_tokens=True)["input_ids"] for t in TEXTS]
        rec["hf_without_special"] = [at(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
        rec["hf_class"] = type(at).__name__
        if getattr(at, "chat_template", None):
            rec["chat_text"] = at.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    except Exception:  # noqa: BLE001
        say(tname, "transformers tokenizer FAILED:\n" + traceback.format_exc())
    encs[tname] = rec
    say(tname, json.dumps(rec)[:2000])
encs["messages"] = MESSAGES
os.makedirs(os.path.join(OUT, "tokenizers"), exist_ok=True)
with open(os.path.join(OUT, "tokenizers", "encodings.json"), "w") as f:
    json.dump(encs, f, ensure_ascii=False, indent=1)
say("done")

#!/usr/bin/env python3
"""Makes the LoRA test fixtures of lorapar-core (src/test/resources/fixtures/lora) and checks, in
PEFT, adapters that lorapar saved.

Inputs (in the working directory):
  llama/model/                 the tiny llama fixture (src/test/resources/fixtures/models/llama/model)
  java_adapters/<name>/        optional: adapters saved by lorapar (adapter_config.json,
                               adapter_model.safetensors) with java_logits.safetensors
                               (input_ids, attention_mask, logits computed by lorapar)
Outputs (in OUT):
  peft_adapter/                a PEFT LoRA (QKVGUD, r=4, lora_alpha=8, known non-zero A and B), save_pretrained
  reference.safetensors        input_ids / attention_mask / labels (-100 on prompt and padding),
                               logits and loss of that adapter (float64 on the CPU, stored as float32),
                               logits_disabled (adapter disabled = base model),
                               grad.<module>.lora_A / grad.<module>.lora_B of the masked loss
                               (mean over examples of the per-example mean token cross-entropy),
                               pissa.<module>.{lora_A,lora_B,weight} and olora.<module>.{...}: PEFT's own
                               init_lora_weights="pissa" (exact SVD) / "olora" on layer 0, r=4, lora_alpha=8
  peft_check.json              per java adapter: max |PEFT logits - lorapar logits| (and the base's distance)
  peft_check/<name>.safetensors   PEFT's logits for each java adapter
The java adapters come from PeftExportForDeviceTest (here, on the CPU):
  mvn -q -B -o -pl lorapar-core test -Dtest=ai.lorapar.lora.PeftExportForDeviceTest \
      -Dsurefire.failIfNoSpecifiedTests=false -Dlorapar.peftExport=/work/main/.gen/java_adapters
and fixtures/models/llama/model is copied to /work/main/.gen/llama/model with this script.
Usage: device run with carry [".gen"]:
  cd .gen && PYTHONUNBUFFERED=1 python3 make_lora_fixtures.py $OUT/fx && cd $OUT && tar czf fx.tgz fx && rm -rf fx
Then unpack fx/* into src/test/resources/fixtures/lora/ (without peft_adapter/README.md) and copy the
java adapters to fixtures/lora/java_adapters/. Made with torch 2.11.0+cu130, transformers 5.17.0,
peft 0.21.0 on the CPU of the device machine in ~20 s (see fixtures/lora/gen.log).
"""
import glob
import json
import os
import sys

import torch

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
LOG = open(os.path.join(OUT, "gen.log"), "w")


def say(*a):
    print(*a)
    print(*a, file=LOG)
    LOG.flush()


import peft  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

say("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)
torch.backends.cuda.matmul.allow_tf32 = False
MODEL = "llama/model"
BOS, EOS, PAD = 256, 257, 258
TRAIN = [
    ([BOS, 10, 20, 30], [40, 50, 60, EOS]),
    ([BOS, 11, 12], [13, 14, 15, 16, 17, 18, EOS]),
    ([BOS, 1, 2, 3, 4, 5, 6], [7, EOS]),
]
QKVGUD = ["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]


def base_model(dtype=torch.float32):
    m = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=dtype, attn_implementation="eager")
    m.eval()
    return m


def batch():
    t = max(len(a) + len(b) for a, b in TRAIN)
    ids = torch.full((len(TRAIN), t), PAD, dtype=torch.long)
    mask = torch.zeros((len(TRAIN), t), dtype=torch.long)
    labels = torch.full((len(TRAIN), t), -100, dtype=torch.long)
    for i, (a, b) in enumerate(TRAIN):
        n = len(a) + len(b)
        ids[i, :n] = torch.tensor(a + b)
        mask[i, :n] = 1
        labels[i, len(a):n] = torch.tensor(b)
    return ids, mask, labels


def positions(mask):
    return (mask.cumsum(-1) - 1).clamp(min=0)


def masked_loss(logits, labels):
    sl = logits[:, :-1, :]
    tl = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(sl.reshape(-1, sl.shape[-1]), tl.reshape(-1), ignore_index=-100,
                                           reduction="none").view(tl.shape)
    cnt = (tl != -100).sum(-1).clamp(min=1)
    return (ce.sum(-1) / cnt).mean()


def our_name(peft_param_name):
    # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight -> model.layers.0.self_attn.q_proj.lora_A
    n = peft_param_name[len("base_model.model."):]
    return n.replace(".default.weight", "")


out = {}
ids, mask, labels = batch()
out["input_ids"], out["attention_mask"], out["labels"] = ids, mask, labels

# 1. a PEFT LoRA with known A and B; logits, loss and gradients in float64
cfg = LoraConfig(r=4, lora_alpha=8, target_modules=QKVGUD, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                 init_lora_weights=False)
pm = get_peft_model(base_model(), cfg)
g = torch.Generator().manual_seed(1234)
with torch.no_grad():
    for n, p in pm.named_parameters():
        if "lora_" in n:
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
pm.save_pretrained(os.path.join(OUT, "peft_adapter"))
pm = pm.double()
logits = pm(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits
loss = masked_loss(logits, labels)
loss.backward()
out["logits"] = logits.detach().float()
out["loss"] = loss.detach().float().reshape(1)
for n, p in pm.named_parameters():
    if "lora_" in n:
        out["grad." + our_name(n)] = p.grad.float()
with torch.no_grad(), pm.disable_adapter():
    out["logits_disabled"] = pm(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits.float()
say("peft adapter: loss", loss.item(), "grads", sum(1 for k in out if k.startswith("grad.")))

# 2. PEFT's own PiSSA / OLoRA initialisations on layer 0 (all seven projections)
for init in ("pissa", "olora"):
    c = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                      "down_proj"], layers_to_transform=[0], lora_dropout=0.0,
                   init_lora_weights=init, task_type="CAUSAL_LM")
    m = get_peft_model(base_model(), c)
    for name, mod in m.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            module = name[len("base_model.model."):]
            out[f"{init}.{module}.lora_A"] = mod.lora_A["default"].weight.detach().float().contiguous()
            out[f"{init}.{module}.lora_B"] = mod.lora_B["default"].weight.detach().float().contiguous()
            out[f"{init}.{module}.weight"] = mod.get_base_layer().weight.detach().float().contiguous()
    say(init, "modules", sum(1 for k in out if k.startswith(init + ".") and k.endswith(".weight")))

save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "reference.safetensors"))

# 3. adapters saved by lorapar: load them in PEFT on the original base model, compare logits
results = {}
os.makedirs(os.path.join(OUT, "peft_check"), exist_ok=True)
for d in sorted(glob.glob("java_adapters/*/")):
    name = os.path.basename(os.path.dirname(d))
    try:
        j = load_file(os.path.join(d, "java_logits.safetensors"))
        base = base_model()
        jid, jmask = j["input_ids"].long(), j["attention_mask"].long()
        with torch.no_grad():
            base_logits = base(input_ids=jid, attention_mask=jmask, position_ids=positions(jmask)).logits
            m = PeftModel.from_pretrained(base, d)
            m.eval()
            peft_r = m.peft_config["default"].r
            peft_logits = m(input_ids=jid, attention_mask=jmask, position_ids=positions(jmask)).logits
            merged = m.merge_and_unload()
            merged_logits = merged(input_ids=jid, attention_mask=jmask, position_ids=positions(jmask)).logits
        keep = jmask.bool()
        diff = (peft_logits - j["logits"])[keep].abs().max().item()
        results[name] = {
            "max_abs_diff_peft_vs_lorapar": diff,
            "max_abs_diff_peft_merged_vs_lorapar": (merged_logits - j["logits"])[keep].abs().max().item(),
            "max_abs_diff_base_vs_lorapar": (base_logits - j["logits"])[keep].abs().max().item(),
            "r": peft_r,
        }
        save_file({"logits": peft_logits.float().contiguous(), "input_ids": jid, "attention_mask": jmask},
                  os.path.join(OUT, "peft_check", name + ".safetensors"))
    except Exception as e:  # noqa: BLE001
        import traceback
        results[name] = {"error": traceback.format_exc()}
    say("peft check", name, results[name])
with open(os.path.join(OUT, "peft_check.json"), "w") as f:
    json.dump(results, f, indent=2)
say("done")

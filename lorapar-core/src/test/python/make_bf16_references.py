#!/usr/bin/env python3
"""Makes transformers' own bf16 CUDA logits for the committed test fixtures, the sharp reference of
the bf16 GPU tests (a bf16 forward against the fp64 reference only shows bf16's own error).

Inputs (in the working directory, copies of src/test/resources/fixtures):
  models/<name>/model/, models/<name>/reference.safetensors   for name in llama, llama_bf16, qwen2, mistral
  lora/peft_adapter/, lora/reference.safetensors             the PEFT adapter of the llama fixture
Outputs (in OUT):
  models/<name>/reference_bf16.safetensors   single.{i}.logits: the model in bf16 on CUDA (eager attention),
                                             stored as float32; single.{i}.fp64_diff: max |bf16 - fp64 reference|
  lora/reference_bf16.safetensors            logits: base in bf16 + the PEFT adapter (PEFT keeps adapter
                                             weights in fp32: autocast_adapter_dtype), same inputs as
                                             reference.safetensors
  gen.log
Usage: copy the fixtures to /work/main/.gen/fx-in, then a device run with carry [".gen"]:
  cd .gen/fx-in && PYTHONUNBUFFERED=1 python3 ../make_bf16_references.py $OUT/bf16
and copy $OUT/bf16/{models,lora}/*/... next to the fixtures they belong to.
Made with torch 2.11.0+cu130, transformers 5.17.0, peft 0.21.0 on an H100 (fixtures/models/gen_bf16.log).
"""
import os
import sys

import torch
import transformers
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
LOG = open(os.path.join(OUT, "gen.log"), "w")


def say(*a):
    print(*a)
    print(*a, file=LOG)
    LOG.flush()


import peft  # noqa: E402

say("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__,
    torch.cuda.get_device_name(0))
dev = "cuda"


def load_bf16(folder):
    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="eager")
    return m.to(dev).eval()


for name in ["llama", "llama_bf16", "qwen2", "mistral"]:
    ref = load_file(f"models/{name}/reference.safetensors")
    model = load_bf16(f"models/{name}/model")
    out = {}
    with torch.no_grad():
        for i in range(3):
            ids = ref[f"single.{i}.input_ids"].to(dev).long().unsqueeze(0)
            logits = model(input_ids=ids).logits[0].float().cpu()
            out[f"single.{i}.logits"] = logits.contiguous()
            want = ref[f"single.{i}.logits"].float()
            d = (logits - want).abs().max().item()
            out[f"single.{i}.fp64_diff"] = torch.tensor([d])
            say(f"{name} prompt {i}: bf16 vs fp64 max |diff| {d:.4g} (max |logit| {want.abs().max().item():.4g})")
    os.makedirs(f"{OUT}/models/{name}", exist_ok=True)
    save_file(out, f"{OUT}/models/{name}/reference_bf16.safetensors")
    del model

ref = load_file("lora/reference.safetensors")
base = load_bf16("models/llama/model")
pm = PeftModel.from_pretrained(base, "lora/peft_adapter").to(dev).eval()
say("peft adapter dtypes:", sorted({str(p.dtype) for n, p in pm.named_parameters() if "lora_" in n}))
with torch.no_grad():
    logits = pm(input_ids=ref["input_ids"].to(dev).long(),
                attention_mask=ref["attention_mask"].to(dev).long()).logits.float().cpu()
mask = ref["attention_mask"].float().unsqueeze(-1)
d = ((logits - ref["logits"].float()) * mask).abs().max().item()
say(f"lora: bf16 vs fp64 max |diff| at real positions {d:.4g}")
os.makedirs(f"{OUT}/lora", exist_ok=True)
save_file({"logits": logits.contiguous()}, f"{OUT}/lora/reference_bf16.safetensors")
say("done")

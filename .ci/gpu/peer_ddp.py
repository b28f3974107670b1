"""The peer's data-parallel figures: PyTorch DistributedDataParallel + PEFT, the stack a Python user scales
with (torchrun / accelerate), on the shapes and steps of ../shared/bench/peer_anchor.py (imported from it:
models, LoRA config, the SFT and GRPO steps as written there), so they stand beside DistributedBenchmark's.

  torchrun --nproc_per_node W peer_ddp.py sft  SHAPE GLOBAL_BATCH TOKENS
  torchrun --nproc_per_node W peer_ddp.py grpo SHAPE PROMPTS          (G = 8, 128 + 256 tokens, micro-batch 16)

SHAPE: qwen2.5-0.5b or llama2-7b. Each rank takes GLOBAL_BATCH / W rows (PROMPTS / W prompts); DDP averages the
gradients in buckets overlapped with backward (GRPO: no_sync on all but the step's last micro-batch). Rank 0
prints one line: `PEER dist world=W shape=S sft_tokens_per_s=...` or `... grpo_step_s=... grpo_rollout_s=...`.
"""
import os, sys, time

# peer_anchor runs its sections at import, chosen by argv[1]: import it with a section that does nothing
_argv, sys.argv = sys.argv, [sys.argv[0], "none"]
sys.path.insert(0, os.environ.get("PEER_DIR", os.path.dirname(os.path.abspath(__file__))))
_out = os.environ.get("OUT")
os.environ["OUT"] = os.environ.get("TMPDIR", "/tmp")
import io, contextlib
with contextlib.redirect_stdout(io.StringIO()):
    import peer_anchor as pa
sys.argv = _argv
if _out is not None:
    os.environ["OUT"] = _out

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
torch.cuda.set_device(local)
dist.init_process_group("nccl", device_id=torch.device("cuda", local))
torch.manual_seed(0)


def build(shape):
    return pa.qwen05().to("cuda", torch.bfloat16) if shape == "qwen2.5-0.5b" else pa.llama7b().to(torch.bfloat16)


def sync():
    torch.cuda.synchronize()
    dist.barrier()


def sft(shape, B, T, n=6):
    pm = pa.peft(build(shape))
    ddp = DDP(pm, device_ids=[local])
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=2e-4)
    b = B // world
    g = torch.Generator(device="cuda").manual_seed(rank)
    ids = torch.randint(0, pm.config.vocab_size, (b, T), device="cuda", generator=g)
    labels = ids.clone(); labels[:, : T // 4] = -100

    def step():
        loss = ddp(input_ids=ids, labels=labels).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)

    for _ in range(3): step()
    sync(); torch.cuda.reset_peak_memory_stats(); t0 = time.time()
    for _ in range(n): step()
    sync(); dt = time.time() - t0
    if rank == 0:
        print(f"PEER dist world={world} shape={shape} sft_tokens_per_s={n * B * T / dt:.0f} step_s={dt / n:.4f}"
              f" peak_gib={torch.cuda.max_memory_allocated() / 2**30:.2f} [global batch {B} x {T}, {b} rows per rank]",
              flush=True)


def grpo(shape, prompts, G=8, P=128, N=256, micro=16, beta=0.04, eps=0.2, n=1):
    pm = pa.peft(build(shape))
    ddp = DDP(pm, device_ids=[local])
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=5e-6, betas=(0.9, 0.99), weight_decay=0.1)
    mine = prompts // world
    B = mine * G

    def lp_of(model, ids, k):
        logits = model(input_ids=ids).logits[:, -k - 1:-1].float()
        return torch.gather(logits.log_softmax(-1), 2, ids[:, -k:].unsqueeze(-1)).squeeze(-1)

    def step():
        # peer_anchor.grpo's step, on this rank's prompts, gradients through DDP
        t0 = time.time()
        pm.eval()
        pr = torch.randint(0, pm.config.vocab_size, (mine, P), device="cuda").repeat_interleave(G, 0)
        with torch.no_grad():
            seq = pm.generate(input_ids=pr, attention_mask=torch.ones_like(pr), max_new_tokens=N, min_new_tokens=N,
                              do_sample=True, temperature=1.0, top_p=1.0, pad_token_id=0)
        torch.cuda.synchronize(); rollout = time.time() - t0
        pm.train()
        r = torch.rand(B, device="cuda").view(mine, G)
        adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1)
        with torch.no_grad(), pm.disable_adapter():
            ref = torch.cat([lp_of(pm, seq[i:i + micro], N) for i in range(0, B, micro)])
        starts = list(range(0, B, micro))
        for i in starts:
            ctx = ddp.no_sync() if i != starts[-1] else contextlib.nullcontext()
            with ctx:
                lp = lp_of(ddp, seq[i:i + micro], N)
                ratio = torch.exp(lp - lp.detach())
                a = adv[i:i + micro].unsqueeze(1)
                surr = torch.min(ratio * a, torch.clamp(ratio, 1 - eps, 1 + eps) * a)
                d = ref[i:i + micro] - lp
                kl = torch.exp(d) - d - 1
                loss = (-(surr - beta * kl)).mean(1).mean() * micro / B
                loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in pm.parameters() if p.requires_grad], 0.1)
        opt.step(); opt.zero_grad(set_to_none=True)
        return rollout

    step(); sync(); torch.cuda.reset_peak_memory_stats(); t0 = time.time()
    rollout = sum(step() for _ in range(n)) / n
    sync(); dt = (time.time() - t0) / n
    if rank == 0:
        print(f"PEER dist world={world} shape={shape} grpo_step_s={dt:.3f} grpo_rollout_s={rollout:.3f}"
              f" peak_gib={torch.cuda.max_memory_allocated() / 2**30:.2f} [{prompts} prompts x G={G}, {P} + {N} tokens,"
              f" {mine} prompts per rank, micro-batch {micro}]", flush=True)


what, shape = sys.argv[1], sys.argv[2]
if what == "sft":
    sft(shape, int(sys.argv[3]), int(sys.argv[4]))
elif what == "grpo":
    grpo(shape, int(sys.argv[3]))
else:
    raise SystemExit(f"unknown section {what!r}: sft or grpo")
dist.destroy_process_group()

"""PyTorch eager peer of crates/passk-train/examples/peer_step.rs: the same model and shapes.

The model is passk's `small` preset: a pre-norm decoder with 4 blocks, d = 128, 4 heads, a 4x GELU
(erf) MLP, learned positions, an untied head, vocabulary 29 and context 32. Each piece prints
`name median_ms` (median over --reps runs after two warm-ups):

  forward_256x14  completion log-probabilities of 256 rows of 10 + 4 tokens (no grad)
  step_256x14     the same with grad, then backward, clip_grad_norm(1.0) and AdamW
  sample_32x8x5   32 prompts x 8 samples, 10-token prompts, 5 new tokens, KV cache (each
                  prompt prefilled once, its cache copied to its samples, as passk does)
  sft_step_b128   log-likelihood of 128 rows of P + R tokens, backward, clip, AdamW
  rl_step_32x16   sample 32 x 16 rows of P + N tokens with the KV cache, then the weighted
                  log-probability loss over all 512 rows, backward, clip, AdamW

P, R and N come from the flags (`cargo xtask bench --peer` passes the lengths peer_step.rs
reports). Threads: --threads (default 1). Install torch (CPU is enough) in a virtual env:
  python3 -m venv target/torch-venv && target/torch-venv/bin/pip install torch
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, CONTEXT, LAYERS, D, HEADS = 29, 32, 4, 128, 4


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.fc = nn.Linear(D, 4 * D)
        self.fc2 = nn.Linear(4 * D, D)

    def forward(self, x, cache):
        b, t, _ = x.shape
        heads = lambda z: z.view(b, t, HEADS, D // HEADS).transpose(1, 2)
        q, k, v = (heads(z) for z in self.qkv(self.ln1(x)).split(D, dim=2))
        if cache is not None:
            if cache:
                k = torch.cat([cache[0], k], dim=2)
                v = torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, D))
        return x + self.fc2(F.gelu(self.fc(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, D)
        self.wpe = nn.Embedding(CONTEXT, D)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, VOCAB, bias=False)

    def forward(self, tokens, caches=None, offset=0):
        t = tokens.shape[1]
        pos = torch.arange(offset, offset + t)
        x = self.wte(tokens) + self.wpe(pos)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.head(self.ln_f(x))


def completion_logprobs(model, tokens, prompt_len):
    """Sum over completion positions of log pi(token | prefix), one value per row."""
    logits = model(tokens)[:, prompt_len - 1 : -1]
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(2, tokens[:, prompt_len:, None]).squeeze(2).sum(1)


@torch.no_grad()
def sample(model, prompts, n, n_new):
    """n samples of each prompt; like passk, each prompt is prefilled once and its cache copied."""
    caches = [[] for _ in range(LAYERS)]
    logits = model(prompts, caches)[:, -1].repeat_interleave(n, dim=0)
    for c in caches:
        c[:] = [t.repeat_interleave(n, dim=0) for t in c]
    prompts = prompts.repeat_interleave(n, dim=0)
    out = [prompts]
    for step in range(n_new):
        nxt = torch.multinomial(torch.softmax(logits, dim=-1), 1)
        out.append(nxt)
        if step + 1 < n_new:
            logits = model(nxt, caches, prompts.shape[1] + step)[:, -1]
    return torch.cat(out, dim=1)


def update(model, opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def timed(reps, f):
    for _ in range(2):
        f()
    ms = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ms.append((time.perf_counter() - t) * 1e3)
    return sorted(ms)[len(ms) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only")
    ap.add_argument("--sft-prompt", type=int, default=8)
    ap.add_argument("--sft-reference", type=int, default=4)
    ap.add_argument("--rl-prompt", type=int, default=8)
    ap.add_argument("--rl-new", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    rand = lambda *shape: torch.randint(3, VOCAB, shape)
    pieces = {}

    rows = rand(256, 14)
    pieces["forward_256x14"] = lambda: torch.no_grad()(completion_logprobs)(model, rows, 10)
    pieces["step_256x14"] = lambda: update(model, opt, -completion_logprobs(model, rows, 10).mean())
    prompts = rand(32, 10)
    pieces["sample_32x8x5"] = lambda: sample(model, prompts, 8, 5)

    p, r = a.sft_prompt, a.sft_reference
    sft_rows = rand(128, p + r)
    pieces["sft_step_b128"] = lambda: update(
        model, opt, -completion_logprobs(model, sft_rows, p).sum() / (128 * r)
    )
    p, n = a.rl_prompt, a.rl_new
    rl_prompts = rand(32, p)

    def rl_step():
        tokens = sample(model, rl_prompts, 16, n)
        update(model, opt, -completion_logprobs(model, tokens, p).sum() / 32)

    pieces["rl_step_32x16"] = rl_step
    print(f"# torch {torch.__version__}, {a.threads} threads, "
          f"{sum(x.numel() for x in model.parameters())} parameters")
    for name, f in pieces.items():
        if a.only in (None, name):
            print(f"{name} {timed(a.reps, f):.3f}", flush=True)


if __name__ == "__main__":
    main()

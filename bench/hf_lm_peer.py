"""Hugging Face transformers (PyTorch eager) peer of `lm_sample`, for `cargo xtask bench --lm`.

Loads SmolLM2-135M-Instruct from the same GGUF (dequantised to f32), puts `batch` distinct
prompts ("What is a + b? ...", the same as lm_sample) in the chat template, left-pads them, and
samples `new` tokens per row at temperature 1 with no early stop and no top-k. Prints `# ...`
comments, `sample_b<batch>_n<new> <generated tokens/s>` (median over reps) and the peak
resident memory `rss_mib <MiB>`.

With `--train-blocks N` it then takes one training step on its last samples, as lm_sample
does: only the last N blocks and the final norm train (the tied embedding is frozen), the
completion tokens' log-probabilities are summed (the head runs on completion positions only)
and back-propagated; it prints `train_b<batch>_blocks<N>_ms <ms>` before the memory line.

Needs: pip install torch transformers gguf numpy accelerate (e.g. in target/torch-venv;
transformers 5 loads GGUF files only with accelerate installed).
Usage: python hf_lm_peer.py GGUF --batch 64 --new 64 --reps 3 --threads 2 [--train-blocks 2]
"""
import argparse
import os
import resource
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("gguf")
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--new", type=int, default=64)
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--train-blocks", type=int, default=0)
a = ap.parse_args()
torch.set_num_threads(a.threads)
folder, name = os.path.dirname(os.path.abspath(a.gguf)), os.path.basename(a.gguf)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
msgs = [
    [{"role": "user", "content": f"What is {i % 10} + {(3 * i) % 10}? Answer with only the number."}]
    for i in range(a.batch)
]
texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
tok.padding_side = "left"
if tok.pad_token is None:
    tok.pad_token = tok.eos_token
enc = tok(texts, return_tensors="pt", padding=True)
print(f"# torch {torch.__version__}, threads {a.threads}, batch {a.batch}, "
      f"prompt {enc['input_ids'].shape[1]} tokens, {a.new} new tokens")
rates = []
with torch.inference_mode():
    for rep in range(a.reps):
        torch.manual_seed(rep)
        t = time.perf_counter()
        out = model.generate(**enc, max_new_tokens=a.new, min_new_tokens=a.new, do_sample=True,
                             temperature=1.0, top_k=0, top_p=1.0)
        made = (out.shape[1] - enc["input_ids"].shape[1]) * a.batch
        rates.append(made / (time.perf_counter() - t))
print(f"sample_b{a.batch}_n{a.new} {statistics.median(rates):.1f}")
if a.train_blocks > 0:
    layers = model.model.layers
    for name, p in model.named_parameters():
        p.requires_grad_(False)
    for block in layers[len(layers) - a.train_blocks:]:
        for p in block.parameters():
            p.requires_grad_(True)
    model.model.norm.weight.requires_grad_(True)
    model.train()
    prompt = enc["input_ids"].shape[1]
    out = out.clone()
    t = time.perf_counter()
    hidden = model.model(input_ids=out, attention_mask=torch.ones_like(out)).last_hidden_state
    logits = model.lm_head(hidden[:, prompt - 1:-1])
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, out[:, prompt:].unsqueeze(-1)).squeeze(-1)
    picked.sum().backward()
    print(f"train_b{a.batch}_blocks{a.train_blocks}_ms {(time.perf_counter() - t) * 1e3:.0f}")
print(f"rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")

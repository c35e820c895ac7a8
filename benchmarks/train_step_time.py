"""Seconds per fine-tuning step on this CPU for the rebuilt backbone cut to 12 / 6 / 4 layers.

    .venv/bin/python benchmarks/train_step_time.py [--backbone runs/backbone/hf] [--threads 2]

One step = forward + backward + AdamW on a batch of 32 random-id sequences (word embeddings frozen, as in the
CPU config), at 32 and 64 tokens; prints the 2nd-4th of 4 steps (the first warms up). Used to size
training/configs/cpu_e5small_6l.json.
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    import torch
    from transformers import AutoModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="runs/backbone/hf")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for layers in (12, 6, 4):
        m = AutoModel.from_pretrained(a.backbone, add_pooling_layer=False, num_hidden_layers=layers)
        m.embeddings.word_embeddings.weight.requires_grad_(False)
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-5)
        for tokens in (32, 64):
            ids = torch.randint(5, 60000, (32, tokens))
            mask = torch.ones_like(ids)
            times = []
            for _ in range(4):
                t = time.time()
                m(input_ids=ids, attention_mask=mask).last_hidden_state.mean(1).sum().backward()
                opt.step()
                opt.zero_grad()
                times.append(time.time() - t)
            print(f"layers {layers} tokens {tokens}: seconds per step {[round(x, 2) for x in sorted(times)[1:]]}",
                  flush=True)


if __name__ == "__main__":
    main()

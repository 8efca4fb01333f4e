"""bigram.py from "Let's build GPT", in PyTorch, as the baseline of the seed-job benchmark.

    python benchmarks/bigram_torch.py --data input.txt [--threads 2] [--max-iters 3000]

bigram.py's model (npbigram.reference_torch's, which the tests compare with), hyperparameters,
batches, evaluation, AdamW and generation, on the CPU. Only the text file (--data), the threads
and the step count come from the command line; the last line reports the training steps' time
(batch, forward, backward, optimizer step) as `npbigram train` does:
"trained 3000 steps in 0.361 s (664,820 tokens/s)".
"""

import argparse
import time

import torch

from npbigram.reference_torch import BigramLanguageModel

BATCH_SIZE, BLOCK_SIZE = 32, 8  # B sequences of T tokens per batch
MAX_ITERS, EVAL_INTERVAL, EVAL_ITERS = 3000, 300, 200
LEARNING_RATE, SEED, SAMPLE_TOKENS = 1e-2, 1337, 500


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, metavar="PATH", help="text file to train on")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--max-iters", type=int, default=MAX_ITERS,
                        help=f"training steps (default: bigram.py's {MAX_ITERS})")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)

    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}

    def get_batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - BLOCK_SIZE, (BATCH_SIZE,))
        x = torch.stack([d[i:i + BLOCK_SIZE] for i in ix])
        y = torch.stack([d[i + 1:i + BLOCK_SIZE + 1] for i in ix])
        return x, y

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in splits:
            losses = torch.zeros(EVAL_ITERS)
            for k in range(EVAL_ITERS):
                losses[k] = model(*get_batch(split))[1].item()
            out[split] = losses.mean()
        model.train()
        return out

    model = BigramLanguageModel(len(chars))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    train_seconds = 0.0
    for step in range(args.max_iters):
        if step % EVAL_INTERVAL == 0:
            losses = estimate_loss()
            print(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        t0 = time.perf_counter()
        xb, yb = get_batch("train")
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        train_seconds += time.perf_counter() - t0

    context = torch.zeros((1, 1), dtype=torch.long)
    print("".join(chars[i] for i in model.generate(context, SAMPLE_TOKENS)[0].tolist()))
    rate = args.max_iters * BATCH_SIZE * BLOCK_SIZE / train_seconds if train_seconds else 0.0
    print(f"trained {args.max_iters} steps in {train_seconds:.3f} s ({rate:,.0f} tokens/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

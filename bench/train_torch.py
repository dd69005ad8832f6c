"""PyTorch CPU reference for bench/train-throughput.mjs: the same Llama architecture as fireopt's
draft (RMSNorm, RoPE, grouped-query attention, SwiGLU, tied head), AdamW, cross-entropy, the same
batch and sequence length. Prints training tokens/s as JSON.
Usage: python3 bench/train_torch.py dim layers heads kv_heads hidden vocab batch seq steps threads [--device cpu|cuda]
--device cuda (scripts/gpu/run.sh) runs on the GPU in float32 with TF32 matrix products off (PyTorch's
default), as WebGPU computes, and synchronises the device around the timed steps."""
import json, math, sys, time
import torch
import torch.nn.functional as F

argv = sys.argv[1:]
device = 'cpu'
if '--device' in argv:
    at = argv.index('--device')
    device = argv[at + 1]
    del argv[at:at + 2]
dim, layers, heads, kv_heads, hidden, vocab, batch, seq, steps, threads = map(int, argv[:10])
torch.set_num_threads(threads)
torch.manual_seed(0)
if device == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
hd = dim // heads

class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__(); self.weight = torch.nn.Parameter(torch.ones(d))
    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight

def rope(x, cos, sin):  # x [B, T, H, D], rotate-half layout
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat((-x2, x1), -1) * sin

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(dim), RMSNorm(dim)
        self.wq = torch.nn.Linear(dim, heads * hd, bias=False)
        self.wk = torch.nn.Linear(dim, kv_heads * hd, bias=False)
        self.wv = torch.nn.Linear(dim, kv_heads * hd, bias=False)
        self.wo = torch.nn.Linear(heads * hd, dim, bias=False)
        self.w1 = torch.nn.Linear(dim, hidden, bias=False)
        self.w2 = torch.nn.Linear(hidden, dim, bias=False)
        self.w3 = torch.nn.Linear(dim, hidden, bias=False)
    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        h = self.n1(x)
        q = rope(self.wq(h).view(B, T, heads, hd), cos, sin).transpose(1, 2)
        k = rope(self.wk(h).view(B, T, kv_heads, hd), cos, sin).transpose(1, 2)
        v = self.wv(h).view(B, T, kv_heads, hd).transpose(1, 2)
        k = k.repeat_interleave(heads // kv_heads, 1); v = v.repeat_interleave(heads // kv_heads, 1)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, 'scaled_dot_product_attention') else \
            torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd) + torch.triu(torch.full((T, T), float('-inf'), device=x.device), 1), -1) @ v
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, heads * hd))
        h = self.n2(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))

class Llama(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(layers)])
        self.norm = RMSNorm(dim)
        freqs = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
        angles = torch.outer(torch.arange(seq).float(), freqs)
        self.register_buffer('cos', torch.cat((angles.cos(), angles.cos()), -1).view(seq, 1, hd))
        self.register_buffer('sin', torch.cat((angles.sin(), angles.sin()), -1).view(seq, 1, hd))
    def forward(self, ids):
        x = self.emb(ids)
        for b in self.blocks: x = b(x, self.cos, self.sin)
        return self.norm(x) @ self.emb.weight.t()

model = Llama().to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
ids = torch.randint(0, vocab, (batch, seq + 1)).to(device)
sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
def step():
    logits = model(ids[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
for _ in range(3): step()
sync()
t0 = time.perf_counter()
for _ in range(steps): step()
sync()
seconds = time.perf_counter() - t0
result = {"torch": torch.__version__, "threads": threads, "device": device, "tokens_per_s": batch * seq * steps / seconds}
if device == 'cuda':
    result.update(gpu=torch.cuda.get_device_name(0), tf32=torch.backends.cuda.matmul.allow_tf32)
print(json.dumps(result))

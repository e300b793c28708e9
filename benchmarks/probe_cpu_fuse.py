# Probe (issue 18): one matmul for q/k/v and one for gate/up in the decoding copy (float32 or int8),
# against the unfused copy, batch-1 greedy decoding of 64 tokens; prints tokens/s and token equality.
# Usage: THREADS=1 .venv/bin/python benchmarks/probe_cpu_fuse.py int8|float32
import sys, time, warnings, os
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1] / 'src'))
import torch
from torch import nn
torch.set_num_threads(int(os.environ.get("THREADS", "1")))
warnings.simplefilter('ignore')
from musilingo.model import MusiLingo
from musilingo.llm import greedy_decode, Int8WeightLinear, input_dtype
from musilingo.config import InferenceConfig
from musilingo.prompts import Turn
prec = sys.argv[1]

class Fused(nn.Module):
    """One matmul for sibling projections called in turn on the same input."""
    def __init__(self, linears, make):
        super().__init__()
        w = torch.cat([l.weight.detach() for l in linears], 0)
        big = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=w.dtype)
        big.weight = nn.Parameter(w, requires_grad=False)
        self.big = make(big)
        self.sizes = [l.out_features for l in linears]
        self.key = None; self.parts = None
    def part(self, i, x):
        if i == 0 or self.key is not x:
            self.parts = self.big(x).split(self.sizes, dim=-1); self.key = x
        return self.parts[i]

class Part(nn.Module):
    def __init__(self, fused, i):
        super().__init__(); self.fused = fused; self.i = i
        self.out_features = fused.sizes[i]
    def forward(self, x):
        return self.fused.part(self.i, x)

def fuse(llm, make):
    for layer in llm.model.layers:
        a, m = layer.self_attn, layer.mlp
        f = Fused([a.q_proj, a.k_proj, a.v_proj], make)
        a.q_proj, a.k_proj, a.v_proj = Part(f, 0), Part(f, 1), Part(f, 2)
        g = Fused([m.gate_proj, m.up_proj], make)
        m.gate_proj, m.up_proj = Part(g, 0), Part(g, 1)
        a._fused, m._fused = f, g

def load():
    m = MusiLingo.from_pretrained('default', device='cpu')
    m.config.inference = InferenceConfig(fast_decode=True, precision='float32' if prec == 'int8' else prec)
    m.prepare_inference()
    return m
m = load()
llm = m.decode_llm
feats = torch.randn(4, m.encoder.feature_dim)
batch = m.build_inputs([feats], [[Turn('Please give a caption to the music.')]], padding_side='left')
mask = batch['attention_mask']
import copy
plain = copy.deepcopy(llm); fused = copy.deepcopy(llm)
if prec == 'int8':
    make = Int8WeightLinear
    fuse(fused, make)
    for mod in (plain, fused):
        for parent in list(mod.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear) and not isinstance(parent, Fused):
                    setattr(parent, name, Int8WeightLinear(child))
else:
    fuse(fused, lambda l: l)
emb = batch['inputs_embeds'].to(input_dtype(plain))
N = 64
def run(mod):
    t = time.perf_counter(); out = greedy_decode(mod, emb, mask, N, [], m.tokenizer.pad_token_id); return time.perf_counter() - t, out
run(plain); run(fused)
tp, tf = [], []
for _ in range(4):
    tp.append(run(plain)[0]); tf.append(run(fused)[0])
a, b = run(plain)[1], run(fused)[1]
print(prec, 'plain tok/s', round(N / min(tp), 1), 'fused tok/s', round(N / min(tf), 1), 'x', round(min(tp) / min(tf), 2), 'same tokens:', bool((a == b).all()), flush=True)

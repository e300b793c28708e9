# Probe (issue 18): does torch.compile (inductor, CPU) of the static-cache decode step speed batch-1
# decoding of the default? Usage: THREADS=1 .venv/bin/python benchmarks/probe_cpu_compile.py int8|bfloat16|float32
# Prints eager and compiled tokens/s and whether the compiled tokens equal the eager static-cache ones.
import sys, time, warnings, os
sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1] / 'src'))
import torch
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
warnings.simplefilter('ignore')
from musilingo.model import MusiLingo
from musilingo.llm import greedy_decode, compiled_decode_step
from musilingo.config import InferenceConfig
prec = sys.argv[1] if len(sys.argv) > 1 else 'float32'
m = MusiLingo.from_pretrained('default', device='cpu')
m.config.inference = InferenceConfig(fast_decode=True, precision=prec)
m.prepare_inference()
llm = m.decode_llm
from musilingo.prompts import Turn
feats = torch.randn(4, m.encoder.feature_dim)
batch = m.build_inputs([feats], [[Turn('Please give a caption to the music.')]], padding_side='left')
from musilingo.llm import input_dtype
emb = batch['inputs_embeds'].to(input_dtype(llm))
mask = batch['attention_mask']
N = 64
def run(**kw):
    t = time.perf_counter(); out = greedy_decode(llm, emb, mask, N, [], m.tokenizer.pad_token_id, **kw); return time.perf_counter() - t, out
for name, kw in [('eager-dynamic', {}), ('eager-static', {'static_cache': True})]:
    run(**kw); ts = [run(**kw)[0] for _ in range(3)]; print(name, 'tok/s', round(N / min(ts), 1), flush=True)
for mode in ['default', 'max-autotune-no-cudagraphs']:
    t0 = time.perf_counter()
    step = compiled_decode_step(llm, mode=mode)
    dt, ref = run(static_cache=True, decode_step=step)
    print(mode, 'first call (compile) s', round(time.perf_counter() - t0, 1), flush=True)
    ts = [run(static_cache=True, decode_step=step)[0] for _ in range(3)]
    _, out = run(static_cache=True, decode_step=step)
    _, eager = run(static_cache=True)
    print(mode, 'tok/s', round(N / min(ts), 1), 'same tokens as eager static:', bool((out == eager).all()), flush=True)

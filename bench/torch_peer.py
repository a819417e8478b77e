#!/usr/bin/env python3
"""The PyTorch peer: Hugging Face transformers on the same card, in the same run as our engine.

Builds LlamaForCausalLM from a LlamaConfig of the catalog shape with random bf16 weights made on
the GPU (no checkpoint, no host copy), then measures with CUDA events, after a warm-up, under
torch.inference_mode():
  decode   prefill a random prompt of --input-tokens, then --output-tokens single-token forward
           steps through the KV cache the model returns (a DynamicCache) with greedy argmax;
           per-step median ms over all steps of --repeats rounds; tokens/s = batch / step time.
           At batch 1 and at --batch.
  prefill  one forward pass over --prefill-tokens tokens at batch 1 (median of --repeats).
           FLOPs = 2 x tokens x (non-embedding parameters: every decoder layer and the final norm)
                 + 2 x (logit rows computed) x (LM head parameters)
           where only the last row's logits are computed when the model takes logits_to_keep.
           Attention's own FLOPs are not counted (as breakeven-engine-bench does), so the rate is
           conservative.
This is the model as transformers runs it out of the box: eager decode steps, SDPA attention, no
CUDA graphs, no torch.compile. Writes one JSON object to --json-out and prints a short table.

  python3 bench/torch_peer.py --model llama-3.1-8b --batch 64 --json-out torch-peer.json
  python3 bench/torch_peer.py --model tiny          # a 2-layer shape, to check the script
"""

import argparse
import contextlib
import inspect
import json
import platform
import statistics
import sys
import time
import traceback

LLAMA3_ROPE_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}

# Shapes by catalog name; rope_scaling None means plain RoPE.
MODELS = {
    "llama-3.1-8b": dict(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        rope_theta=500000.0,
        rope_scaling=LLAMA3_ROPE_SCALING,
        max_position_embeddings=131072,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    ),
    "tiny": dict(
        vocab_size=32000,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        rope_theta=500000.0,
        rope_scaling=LLAMA3_ROPE_SCALING,
        max_position_embeddings=8192,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    ),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="llama-3.1-8b", choices=sorted(MODELS))
    p.add_argument("--batch", type=int, default=64, help="the larger decode batch")
    p.add_argument("--input-tokens", type=int, default=128, help="prompt length of decode runs")
    p.add_argument("--output-tokens", type=int, default=64, help="decode steps timed per round")
    p.add_argument("--prefill-tokens", type=int, default=2048, help="prompt length of prefill")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds; medians are reported")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu, to check the script")
    p.add_argument("--attn", default="sdpa", help="transformers attention implementation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out", help="write the results here as one JSON object")
    a = p.parse_args(argv)
    for name in ("batch", "input_tokens", "output_tokens", "prefill_tokens", "repeats"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def make_config(transformers, shape, attn):
    """A LlamaConfig of this shape, for transformers 4.x (rope_theta, rope_scaling) or 5.x
    (rope_parameters, which still converts the 4.x keywords but is given directly here)."""
    kwargs = dict(shape)
    rope_theta = kwargs.pop("rope_theta")
    rope_scaling = kwargs.pop("rope_scaling")
    fields = set(getattr(transformers.LlamaConfig, "__dataclass_fields__", {}))
    fields |= set(inspect.signature(transformers.LlamaConfig.__init__).parameters)
    if "rope_parameters" in fields:
        kwargs["rope_parameters"] = dict(rope_scaling or {"rope_type": "default"},
                                         rope_theta=rope_theta)
    else:
        kwargs["rope_theta"] = rope_theta
        kwargs["rope_scaling"] = dict(rope_scaling) if rope_scaling else None
    kwargs.update(use_cache=True, attention_bias=False, mlp_bias=False, hidden_act="silu")
    config = transformers.LlamaConfig(**kwargs)
    with contextlib.suppress(Exception):
        config._attn_implementation = attn
    return config


def no_init_context(transformers):
    """transformers' context that skips weight initialisation, wherever this version keeps it."""
    for module_name in ("transformers.initialization", "transformers.modeling_utils"):
        with contextlib.suppress(Exception):
            module = __import__(module_name, fromlist=["no_init_weights"])
            fn = getattr(module, "no_init_weights", None)
            if fn is not None:
                return fn(), f"{module_name}.no_init_weights"
    return contextlib.nullcontext(), "none"


def build_model(torch, transformers, config, device, dtype):
    """The model with random weights, made where it will run: under the device context with the
    default dtype set, initialisation skipped, then every parameter filled in place (matrices
    N(0, 0.02), norm weights 1). No host copy of the weights is ever made."""
    ctx, how = no_init_context(transformers)
    try:
        on_device = torch.device(device)
        on_device.__enter__  # a context manager from torch 2.0 on
    except AttributeError:
        if device.type != "cpu":
            raise RuntimeError(f"torch {torch.__version__} cannot build a model on {device} "
                               "in place (needs torch >= 2.0)")
        on_device = contextlib.nullcontext()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with on_device, ctx:
            model = transformers.LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dtype != dtype:
                p.data = p.data.to(dtype)
            if p.dim() >= 2:
                p.normal_(0.0, 0.02, generator=gen)
            else:
                p.fill_(1.0)
    model.eval()
    return model, how


def logits_keyword(model):
    """The keyword that limits logits to the last rows (5.x and late 4.x: logits_to_keep; 4.45 to
    4.49: num_logits_to_keep), or None."""
    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return name
    return None


class Clock:
    """Marks on the device's stream (CUDA events) or on the host clock (CPU)."""

    def __init__(self, torch, device):
        self.torch = torch
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            e = self.torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def ms(self, a, b):
        return a.elapsed_time(b) if self.cuda else (b - a) * 1000.0


def decode_round(torch, model, clock, vocab, batch, prompt, steps, keep, gen, device):
    """Per-step times (ms) of `steps` greedy decode steps after a prefill of `prompt` tokens."""
    ids = torch.randint(0, vocab, (batch, prompt), device=device, generator=gen)
    out = model(input_ids=ids, use_cache=True, **keep)
    past = out.past_key_values
    token = out.logits[:, -1:].argmax(-1)  # (batch, 1)
    marks = [clock.mark()]
    for _ in range(steps):
        out = model(input_ids=token, past_key_values=past, use_cache=True)
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        marks.append(clock.mark())
    clock.sync()
    cache = type(past).__name__
    del out, past, token, ids
    return [clock.ms(marks[i], marks[i + 1]) for i in range(steps)], cache


def measure_decode(torch, model, clock, args, vocab, batch, keep, gen, device):
    warm_steps = min(args.output_tokens, 8)
    decode_round(torch, model, clock, vocab, batch, args.input_tokens, warm_steps, keep, gen,
                 device)
    steps, cache = [], ""
    for _ in range(args.repeats):
        s, cache = decode_round(torch, model, clock, vocab, batch, args.input_tokens,
                                args.output_tokens, keep, gen, device)
        steps += s
    step_ms = statistics.median(steps)
    return {
        "batch": batch,
        "input_tokens": args.input_tokens,
        "output_tokens": args.output_tokens,
        "rounds": args.repeats,
        "step_ms": step_ms,
        "step_ms_min": min(steps),
        "step_ms_max": max(steps),
        "tokens_per_s": batch * 1000.0 / step_ms,
        "cache": cache,
    }


def measure_prefill(torch, model, clock, args, vocab, keep, flops, gen, device):
    ids = torch.randint(0, vocab, (1, args.prefill_tokens), device=device, generator=gen)
    times = []
    for i in range(args.repeats + 1):  # the first is the warm-up
        a = clock.mark()
        out = model(input_ids=ids, use_cache=True, **keep)
        b = clock.mark()
        clock.sync()
        del out
        if i > 0:
            times.append(clock.ms(a, b))
    ms = statistics.median(times)
    return {
        "tokens": args.prefill_tokens,
        "rounds": args.repeats,
        "ms": ms,
        "ms_min": min(times),
        "flops": flops,
        "tflops": flops / (ms / 1000.0) / 1e12,
    }


def count_params(model):
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    tied = embed.data_ptr() == head.data_ptr()
    embedding = embed.numel() + (0 if tied else head.numel())
    return {
        "total": total,
        "embedding_table": embed.numel(),
        "lm_head": head.numel(),
        "tied": tied,
        "non_embedding": total - embedding,
    }


def print_table(result):
    print(f"\n{result['model']} with transformers {result['transformers_version']}, torch "
          f"{result['torch_version']} on {result['device_name']}; {result['dtype']}, "
          f"{result['attn_implementation']} attention, medians of {result['repeats']} rounds")
    print(f"{'RUN':<18}  {'BATCH':>5}  {'TOKENS':>6}  {'TIME':>9}  {'RATE':>12}")
    print(f"{'':<18}  {'':>5}  {'':>6}  {'ms':>9}  {'':>12}")
    for d in result["decode"]:
        print(f"{'decode step':<18}  {d['batch']:>5}  {d['input_tokens']:>6}  "
              f"{d['step_ms']:>9.2f}  {d['tokens_per_s']:>7.1f} tok/s")
    p = result.get("prefill")
    if p:
        print(f"{'prefill':<18}  {1:>5}  {p['tokens']:>6}  {p['ms']:>9.2f}  "
              f"{p['tflops']:>5.4g} TFLOP/s")
    for e in result["errors"]:
        print(f"error: {e}")


def main(argv):
    args = parse_args(argv)
    result = {
        "peer": "pytorch-transformers",
        "model": args.model,
        "repeats": args.repeats,
        "decode": [],
        "prefill": None,
        "errors": [],
        "python_version": platform.python_version(),
    }

    def write():
        if args.json_out:
            with open(args.json_out, "w") as f:
                json.dump(result, f, indent=2, default=str)
                f.write("\n")

    try:
        import torch
        import transformers
    except ImportError as e:
        result["errors"].append(f"import: {e}")
        write()
        print(f"torch_peer: {e}", file=sys.stderr)
        return 1
    result["torch_version"] = torch.__version__
    result["transformers_version"] = transformers.__version__
    result["cuda_version"] = getattr(torch.version, "cuda", None)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        result["errors"].append("CUDA is not available to torch")
        write()
        print("torch_peer: CUDA is not available to torch (use --device cpu to check the script)",
              file=sys.stderr)
        return 1
    result["device_name"] = (torch.cuda.get_device_name(device) if device.type == "cuda"
                             else platform.processor() or "cpu")
    dtype = torch.bfloat16
    result["dtype"] = "bf16"
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)

    t0 = time.perf_counter()
    config = make_config(transformers, MODELS[args.model], args.attn)
    model, init_skip = build_model(torch, transformers, config, device, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize()
    result["build_s"] = time.perf_counter() - t0
    result["init_skipped_by"] = init_skip
    result["attn_implementation"] = getattr(model.config, "_attn_implementation", args.attn)
    result["rope"] = (getattr(model.config, "rope_parameters", None)
                      or getattr(model.config, "rope_scaling", None))
    params = count_params(model)
    result["params"] = params
    result["weight_bytes"] = params["total"] * 2
    keep_name = logits_keyword(model)
    keep = {keep_name: 1} if keep_name else {}
    result["logits_to_keep_keyword"] = keep_name
    if device.type == "cuda":
        result["memory_after_build_gib"] = torch.cuda.memory_allocated(device) / 2**30
    print(f"torch_peer: {args.model} built in {result['build_s']:.1f} s on "
          f"{result['device_name']}: {params['total'] / 1e9:.2f} B parameters", file=sys.stderr)

    clock = Clock(torch, device)
    vocab = config.vocab_size
    with torch.inference_mode():
        for batch in sorted({1, args.batch}):
            try:
                d = measure_decode(torch, model, clock, args, vocab, batch, keep, gen, device)
                result["decode"].append(d)
                print(f"torch_peer: decode batch {batch}: {d['step_ms']:.2f} ms/step, "
                      f"{d['tokens_per_s']:.1f} tok/s", file=sys.stderr)
            except Exception as e:  # an OOM at one batch should not lose the other figures
                result["errors"].append(f"decode batch {batch}: {type(e).__name__}: {e}")
                traceback.print_exc()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        try:
            lm_rows = 1 if keep else args.prefill_tokens
            flops = (2.0 * args.prefill_tokens * params["non_embedding"]
                     + 2.0 * lm_rows * params["lm_head"])
            result["prefill"] = measure_prefill(torch, model, clock, args, vocab, keep, flops, gen,
                                                device)
            result["prefill"]["flop_formula"] = (
                "2 x tokens x non-embedding parameters + 2 x logit rows x LM head parameters")
            print(f"torch_peer: prefill {args.prefill_tokens} tokens: "
                  f"{result['prefill']['ms']:.2f} ms", file=sys.stderr)
        except Exception as e:
            result["errors"].append(f"prefill: {type(e).__name__}: {e}")
            traceback.print_exc()
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30

    write()
    print_table(result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

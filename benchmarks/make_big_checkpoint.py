"""Write a WMT19 transformer-big shaped fairseq checkpoint with random weights.

The file is laid out like a 2019 fairseq training checkpoint (what the WMT19
``model*.pt`` files are): an ``args`` ``argparse.Namespace``, fused
``in_proj_weight``/``in_proj_bias`` attention projections, ``layer_norms``-free
2019 key names, ``*.version`` markers, ``optimizer_history``, ``extra_state``
and an Adam ``last_optimizer_state`` (one flat fp32 ``exp_avg``/``exp_avg_sq``
pair, as fairseq's FP16Optimizer keeps it: twice the model size on disk, never
needed for inference). Next to it: ``dict.en.txt``/``dict.de.txt`` (one joined
dictionary) and ``bpecodes``.

Shape: d_model 1024, ffn 8192, 16 heads, 6+6 layers, post-norm, sinusoidal
positions, a joined 31,232-entry dictionary with ``--share-all-embeddings``:
309M parameters (1.24 GB in fp32).

The dictionary starts with the small-en-de fixture's symbols (so its ids and
bpecodes give real sentences) and is padded with synthetic symbols.

    python benchmarks/make_big_checkpoint.py [--out benchmarks/_work/big-ckpt] [--optimizer-state none]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

from fsmt_port.modeling.model import DTYPES

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "tests" / "fixtures" / "small-en-de"
DEFAULT_OUT = REPO / "benchmarks" / "_work" / "big-ckpt"

SHAPE = {"embed_dim": 1024, "ffn_dim": 8192, "heads": 16, "layers": 6, "vocab": 31232}


def write_dictionary(out: Path, size: int) -> int:
    """dict.en.txt == dict.de.txt with ``size`` entries including the 4 specials; returns the size."""
    lines = (SMALL / "dict.en.txt").read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if not line.startswith("madeupword")]
    count = 1
    while len(lines) + 4 < size:
        lines.append(f"zz{count}@@ 1" if count % 2 else f"zz{count} 1")
        count += 1
    text = "\n".join(lines[: size - 4]) + "\n"
    for lang in ("en", "de"):
        (out / f"dict.{lang}.txt").write_text(text, encoding="utf-8")
    shutil.copy(SMALL / "bpecodes", out / "bpecodes")
    return size


def fairseq_args(dim: int, ffn: int, heads: int, layers: int) -> argparse.Namespace:
    """The options a 2019 ``fairseq-train --arch transformer_wmt_en_de_big`` run stored."""
    return argparse.Namespace(
        activation_dropout=0.0, activation_fn="relu", adam_betas="(0.9, 0.98)", adam_eps=1e-08,
        adaptive_input=False, adaptive_softmax_cutoff=None, adaptive_softmax_dropout=0,
        arch="transformer_wmt_en_de_big", attention_dropout=0.1, clip_norm=0.0, criterion="label_smoothed_cross_entropy",
        data="wmt19_en_de_joined_dict", ddp_backend="c10d", decoder_attention_heads=heads, decoder_embed_dim=dim,
        decoder_embed_path=None, decoder_ffn_embed_dim=ffn, decoder_input_dim=dim, decoder_layers=layers,
        decoder_learned_pos=False, decoder_normalize_before=False, decoder_output_dim=dim, dropout=0.2,
        encoder_attention_heads=heads, encoder_embed_dim=dim, encoder_embed_path=None, encoder_ffn_embed_dim=ffn,
        encoder_layers=layers, encoder_learned_pos=False, encoder_normalize_before=False, fp16=True,
        label_smoothing=0.1, left_pad_source=True, left_pad_target=False, lr=[0.0007], lr_scheduler="inverse_sqrt",
        max_source_positions=1024, max_target_positions=1024, max_tokens=3584, max_update=0, min_lr=1e-09,
        no_token_positional_embeddings=False, optimizer="adam", seed=2, share_all_embeddings=True,
        share_decoder_input_output_embed=True, source_lang="en", target_lang="de", task="translation",
        update_freq=[16], warmup_init_lr=1e-07, warmup_updates=4000, weight_decay=0.0)


def random_state(vocab: int, dim: int, ffn: int, layers: int, dtype: torch.dtype, seed: int) -> dict:
    """A 2019-layout state_dict with random weights (fused in_proj, embed_positions._float_tensor)."""
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int, std: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).to(dtype)

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=dtype)

    def ones(*shape: int) -> torch.Tensor:
        return torch.ones(*shape, dtype=dtype)

    embed = normal(vocab, dim, std=dim ** -0.5)
    embed[1] = 0  # padding row
    state: dict[str, torch.Tensor] = {}

    def attention(prefix: str) -> None:
        state[f"{prefix}.in_proj_weight"] = normal(3 * dim, dim, std=dim ** -0.5)
        state[f"{prefix}.in_proj_bias"] = zeros(3 * dim)
        state[f"{prefix}.out_proj.weight"] = normal(dim, dim, std=dim ** -0.5)
        state[f"{prefix}.out_proj.bias"] = zeros(dim)

    def norm(prefix: str) -> None:
        state[f"{prefix}.weight"] = ones(dim)
        state[f"{prefix}.bias"] = zeros(dim)

    def ffn_block(prefix: str) -> None:
        state[f"{prefix}.fc1.weight"] = normal(ffn, dim, std=dim ** -0.5)
        state[f"{prefix}.fc1.bias"] = zeros(ffn)
        state[f"{prefix}.fc2.weight"] = normal(dim, ffn, std=ffn ** -0.5)
        state[f"{prefix}.fc2.bias"] = zeros(dim)

    for side in ("encoder", "decoder"):
        state[f"{side}.version"] = torch.tensor([2.0])
        state[f"{side}.embed_tokens.weight"] = embed  # shared: one storage, as fairseq saves it
        state[f"{side}.embed_positions._float_tensor"] = torch.tensor([0.0])
        for i in range(layers):
            prefix = f"{side}.layers.{i}"
            attention(f"{prefix}.self_attn")
            norm(f"{prefix}.self_attn_layer_norm")
            if side == "decoder":
                attention(f"{prefix}.encoder_attn")
                norm(f"{prefix}.encoder_attn_layer_norm")
            ffn_block(prefix)
            norm(f"{prefix}.final_layer_norm")
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: %(default)s)")
    parser.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32", help="model weight dtype in the file")
    parser.add_argument("--optimizer-state", choices=("adam", "none"), default="adam",
                        help="adam: fp32 exp_avg + exp_avg_sq for every parameter (realistic); none: empty")
    parser.add_argument("--layers", type=int, default=SHAPE["layers"])
    parser.add_argument("--embed-dim", type=int, default=SHAPE["embed_dim"])
    parser.add_argument("--ffn-dim", type=int, default=SHAPE["ffn_dim"])
    parser.add_argument("--heads", type=int, default=SHAPE["heads"])
    parser.add_argument("--vocab", type=int, default=SHAPE["vocab"], help="dictionary size incl. the 4 specials")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="overwrite an existing checkpoint")
    args = parser.parse_args(argv)

    out: Path = args.out
    ckpt_path = out / "model.pt"
    if ckpt_path.exists() and not args.force:
        print(f"{ckpt_path} exists; pass --force to rewrite it", file=sys.stderr)
        return 0
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    vocab = write_dictionary(out, args.vocab)
    dtype = DTYPES[args.dtype]
    state = random_state(vocab, args.embed_dim, args.ffn_dim, args.layers, dtype, args.seed)
    n_params = sum(t.numel() for k, t in state.items()
                   if not k.endswith(("version", "_float_tensor")) and k != "decoder.embed_tokens.weight")
    if args.optimizer_state == "adam":
        # torch.zeros pages are not resident until written, so this costs no memory here.
        optimizer = {"state": {0: {"step": 300000, "exp_avg": torch.zeros(n_params),
                                   "exp_avg_sq": torch.zeros(n_params)}},
                     "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.98), "eps": 1e-8, "weight_decay": 0.0,
                                       "amsgrad": False, "params": [0]}],
                     "loss_scale": 128.0}
    else:
        optimizer = {}
    checkpoint = {
        "args": fairseq_args(args.embed_dim, args.ffn_dim, args.heads, args.layers),
        "model": state,
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion",
                               "optimizer_name": "FairseqAdam", "lr_scheduler_state": {"best": 3.1},
                               "num_updates": 300000}],
        "extra_state": {"train_iterator": {"epoch": 12, "iterations_in_epoch": 0, "shuffle": True},
                        "val_loss": 3.1},
        "last_optimizer_state": optimizer,
    }
    tmp = ckpt_path.with_suffix(".pt.tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(ckpt_path)
    size = ckpt_path.stat().st_size
    print(f"wrote {ckpt_path}: {n_params / 1e6:.1f}M parameters, {size / 2**30:.2f} GiB "
          f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`npbigram export`: a checkpoint's model as a safetensors file, bigram.py's state_dict with
the tokenizer and the run as metadata (npbigram.data.safetensors_format)."""

from ..checkpoint import load_checkpoint
from ..data.safetensors_format import (
    is_exported,
    safetensors_package,
    write_safetensors,
)
from ..interop import STATE_DICT_KEY
from .common import add_checkpoint_flag, check_out


def add_export_parser(sub):
    p = sub.add_parser(
        "export", help="write a checkpoint's model as safetensors, loadable by bigram.py",
        description=f"Write the model of a checkpoint to a safetensors file under bigram.py's "
                    f"key {STATE_DICT_KEY} (safetensors.torch.load_file gives bigram.py's "
                    f"state_dict), with the tokenizer and the run as metadata. Every command "
                    f"that takes --checkpoint reads it; training continues from the .npz only.")
    add_checkpoint_flag(p)
    p.add_argument("--out", required=True, metavar="PATH", help="safetensors file to write")
    p.add_argument("--force", action="store_true",
                   help="replace PATH if it is a safetensors file npbigram exported")
    p.set_defaults(run=run_export)


def run_export(args):
    purpose = f"--out {args.out}"
    safetensors_package(purpose)
    check_out(args.out, args.force, "a safetensors file npbigram exported", is_exported)
    checkpoint = load_checkpoint(args.checkpoint, backend="numpy")
    write_safetensors(args.out, checkpoint, purpose)
    weight = checkpoint.model.weight
    tokenizer = (f"the {checkpoint.tokenizer.kind} tokenizer" if checkpoint.tokenizer
                 else "no tokenizer")
    print(f"wrote {args.out}: {STATE_DICT_KEY} {weight.dtype} {weight.shape}, {tokenizer}, "
          f"step {checkpoint.step}")
    return 0

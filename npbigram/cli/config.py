"""A run's settings in a TOML file: `npbigram train --config run.toml` and `--print-config`.

A key is a flag's long name with _ for - (`batch_size = 64` is `--batch-size 64`; a switch such
as `full_batch` takes true or false); every flag of the command is one, read from its parser,
so a flag added later is a key too. The file's values become the command's defaults and the
command line is parsed again, so a flag given there wins. An unknown key, or a value of the
wrong type or outside the flag's choices, is an error naming the key and the file.

`--print-config` writes the effective settings of the run as such a file, and trains nothing:
every setting of TrainConfig that has an effect, the data and tokenizer, and every other flag
given; with `--checkpoint PATH`, the settings of the run that wrote it (the flags given
change them); with `--resume`, the resumed run's. Training from the printed file reproduces the
run bit for bit.
"""

import re
import sys
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..train import TrainConfig
from .common import DEFAULT_TOKENIZER, CommandError
from .run_setup import new_config, resumed_config

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

NOT_KEYS = ("help", "config", "print_config", "checkpoint")  # what the file is, not a setting
TOML_TYPES = {int: (int,), float: (int, float), str: (str,)}  # a flag's type -> values it takes
TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
              list: "an array", dict: "a table"}
# what a TOML basic string cannot hold as it is: control characters, the quote, the backslash
STRING_ESCAPES = {**{code: f"\\u{code:04x}" for code in [*range(0x20), 0x7f]},
                  ord('"'): '\\"', ord("\\"): "\\\\"}
HEADER = ("# settings of npbigram train, for --config FILE (flags on the command line override "
          "them)")


def add_config_flags(p):
    p.add_argument("--config", metavar="FILE",
                   help="read settings from this TOML file: any flag above as a key, its name "
                        "with _ for - (batch_size = 64, full_batch = true); flags on the command "
                        "line override it")
    p.add_argument("--print-config", action="store_true",
                   help="print the run's settings as a --config file and exit, training nothing")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="with --print-config: the settings of the run that wrote this checkpoint "
                        "(.npz or .safetensors)")
    p.set_defaults(parser=p)


def with_config_file(parser, args, argv):
    """`args` parsed from `argv` by `parser` again, when its command was given --config FILE:
    with the file's settings as the command's defaults, so that flags on the command line
    win."""
    if getattr(args, "config", None) is None:
        return args
    args.parser.set_defaults(**read_config(args.config, args.parser))
    return parser.parse_args(argv)


def config_keys(parser):
    """key -> argparse action, for each flag of `parser` that a file may set, in its order."""
    keys = {}
    for action in parser._actions:
        names = [name for name in action.option_strings if name.startswith("--")]
        if names and action.dest not in NOT_KEYS:
            keys[names[0][2:].replace("-", "_")] = action
    return keys


def read_config(path, parser):
    """{dest: value} of a --config file for `parser`'s flags, each value checked as the flag
    takes it; a file that cannot be read, is not TOML, has an unknown key or a value of the
    wrong type is a CommandError naming it."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except FileNotFoundError:
        raise CommandError(f"--config {path} does not exist") from None
    except OSError as e:
        raise CommandError(f"cannot read --config {path}: {e.strerror or e}") from None
    except ValueError as e:  # TOMLDecodeError, or bytes that are not UTF-8
        raise CommandError(f"--config {path} is not valid TOML: {e}") from None
    keys = config_keys(parser)
    unknown = [key for key in table if key not in keys]
    if unknown:
        raise CommandError(f"--config {path}: unknown key{'s' * (len(unknown) > 1)} "
                           f"{', '.join(map(repr, unknown))}; the keys are the flags of "
                           f"npbigram train with _ for -: {', '.join(keys)}")
    return {keys[key].dest: flag_value(value, keys[key], f"--config {path}: {key}")
            for key, value in table.items()}


def flag_value(value, action, where):
    """A TOML value as the flag of `action` takes it: a switch true (given) or false (not
    given), a number or string of the flag's type and within its choices."""
    if action.nargs == 0:  # a switch: store_true and its kin
        if not isinstance(value, bool):
            raise CommandError(f"{where} must be true or false, got {describe(value)}")
        return action.const if value else action.default
    kind = action.type or str
    if isinstance(value, bool) or not isinstance(value, TOML_TYPES.get(kind, (str,))):
        expected = TYPE_NAMES.get(kind, "a string")
        raise CommandError(f"{where} must be {expected}, got {describe(value)}")
    try:
        value = kind(value)
    except (ValueError, TypeError) as e:  # argparse.ArgumentTypeError is a ValueError
        raise CommandError(f"{where}: {e}") from None
    if action.choices is not None and value not in action.choices:
        raise CommandError(f"{where} must be one of {', '.join(map(str, action.choices))}, "
                           f"got {value!r}")
    return value


def describe(value):
    """'a string "3"': a TOML value as the file spells it."""
    kind = next((name for type_, name in TYPE_NAMES.items() if isinstance(value, type_)),
                "a date or time")
    return f"{kind} {toml_value(value) if isinstance(value, (int, float, str)) else value}"


def run_settings(args, given):
    """(table, comments): the settings `npbigram train` would run with, key -> value in the
    order of its flags, and what a reader should know of those left out (the data)."""
    source = args.checkpoint or args.resume
    checkpoint = load_checkpoint(source) if source else None
    if args.resume:
        config = resumed_config(checkpoint, args.resume, given, args.tokenizer)
    elif checkpoint is not None:
        config = new_config({**effective(TrainConfig.from_dict(checkpoint.config)), **given})
    else:
        config = new_config(given)
    keys = config_keys(args.parser)
    values = {key: getattr(args, action.dest) for key, action in keys.items()}
    values.update(dict.fromkeys(config.to_dict()), **effective(config))
    recorded = checkpoint.data if checkpoint is not None else None
    values["data"] = args.data or (recorded["path"] if recorded else None)
    comments = []
    if values["data"] is None:
        comments.append(f"# data: {source} does not record its text, give it with data = PATH"
                        if checkpoint is not None else
                        "# data: not given, so tinyshakespeare (downloaded if missing)")
    if checkpoint is not None and checkpoint.tokenizer is not None:
        values["tokenizer"] = args.tokenizer or checkpoint.tokenizer.kind
    elif checkpoint is None and args.tokenizer is None and not (
            args.data is not None and Path(args.data).is_dir()):  # a prepared folder has its own
        values["tokenizer"] = DEFAULT_TOKENIZER
    table = {key: value for key, value in values.items()
             if value is not None and (keys[key].nargs != 0 or value == keys[key].const)}
    return table, comments


def effective(config):
    """The settings of a TrainConfig that a run uses: those set, and with an effect."""
    unused = config.unused_settings()
    return {name: value for name, value in config.to_dict().items()
            if value is not None and name not in unused}


def print_config(args, given):
    """Write the run's settings to stdout as a --config file."""
    table, comments = run_settings(args, given)
    sys.stdout.write(toml_text(table, [HEADER, *comments]))
    return 0


def toml_text(table, comments=()):
    """A flat table of booleans, integers, floats and strings as TOML that tomllib reads back
    equal (floats by repr, which TOML's grammar takes, inf and nan included)."""
    lines = list(comments)
    for key, value in table.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
            raise ValueError(f"{key!r} is not a bare TOML key")
        try:
            lines.append(f"{key} = {toml_value(value)}")
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
    return "".join(line + "\n" for line in lines)


def toml_value(value):
    """A boolean, integer, float or string as TOML spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{value!r} is not valid Unicode, which TOML needs") from None
        return '"' + value.translate(STRING_ESCAPES) + '"'
    raise ValueError(f"TOML here holds booleans, numbers and strings, not "
                     f"{type(value).__name__}")

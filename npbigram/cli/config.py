"""A run's settings: `npbigram train`'s flags, its TOML file (`--config run.toml`) and
`--print-config`, all from one table, the fields of TrainConfig and RunOptions. A key is the
flag's long name with _ for -; flags win over the file's keys; the dataclasses check both once,
and a bad value is an error naming the flag, or the key and the file.
"""

import dataclasses
import re
import sys
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..train import TrainConfig
from .common import DEFAULT_TOKENIZER, CommandError, flag
from .run_setup import RunOptions, new_config, resumed_config

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

SETTINGS = {field.name: field for settings in (RunOptions, TrainConfig)
            for field in dataclasses.fields(settings)}  # every flag of train that is a key
# what a TOML basic string cannot hold as it is: control characters, the quote, the backslash
STRING_ESCAPES = {**{code: f"\\u{code:04x}" for code in [*range(0x20), 0x7f]},
                  ord('"'): '\\"', ord("\\"): "\\\\"}
HEADER = ("# settings of npbigram train, for --config FILE (flags on the command line override "
          "them)")


def add_settings_flags(p):
    """train's flags: one for each setting, and --config, --print-config and --checkpoint."""
    for field in SETTINGS.values():  # no flag has a default: what is not given is known
        rules = field.metadata
        if field.type is bool:
            p.add_argument(flag(field.name), action="store_true", default=None,
                           help=rules["help"])
        else:
            shown = "" if field.default is None else f" (default: {field.default})"
            choices = "{" + ",".join(rules["choices"]) + "}" if "choices" in rules else None
            p.add_argument(flag(field.name), type=field.type, default=None,
                           metavar=choices or rules.get("metavar"), help=rules["help"] + shown)
    p.add_argument("--config", metavar="FILE",
                   help="read settings from this TOML file: any flag above as a key, its name "
                        "with _ for - (batch_size = 64, full_batch = true); flags on the command "
                        "line override it")
    p.add_argument("--print-config", action="store_true",
                   help="print the run's settings as a --config file and exit, training nothing")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="with --print-config: the settings of the run that wrote this checkpoint "
                        "(.npz or .safetensors)")


def read_config(path):
    """The settings of a --config file, name -> value (a switch set false is left out, as a
    flag not given); a bad file or an unknown key is a CommandError naming it."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except FileNotFoundError:
        raise CommandError(f"--config {path} does not exist") from None
    except OSError as e:
        raise CommandError(f"cannot read --config {path}: {e.strerror or e}") from None
    except ValueError as e:  # TOMLDecodeError, or bytes that are not UTF-8
        raise CommandError(f"--config {path} is not valid TOML: {e}") from None
    unknown = [key for key in table if key not in SETTINGS]
    if unknown:
        raise CommandError(f"--config {path}: unknown key{'s' * (len(unknown) > 1)} "
                           f"{', '.join(map(repr, unknown))}; the keys are the flags of "
                           f"npbigram train with _ for -: {', '.join(SETTINGS)}")
    return {key: value for key, value in table.items()
            if not (value is False and SETTINGS[key].type is bool)}


def given_settings(args, file):
    """(options, given): the RunOptions of `npbigram train` and the TrainConfig settings given
    (name -> value), its flags over the keys of its --config file."""
    given = {**file, **{name: getattr(args, name) for name in SETTINGS
                        if getattr(args, name) is not None}}
    options = RunOptions(**{field.name: given.pop(field.name)
                            for field in dataclasses.fields(RunOptions) if field.name in given})
    return options, given


def as_given(e, args, file):
    """A SettingError as a CommandError naming the setting as the user gave it: its flag, or
    (when the command line did not give it) its key and the --config file."""
    if e.name in file and getattr(args, e.name, None) is None:
        return CommandError(f"--config {args.config}: {e}")
    return CommandError(e.message(flag(e.name)))


def print_config(args, options, given):
    """Write the run's settings to stdout as a --config file that reproduces it: the RunOptions
    given, the data, and every setting of its TrainConfig that has an effect (with --checkpoint,
    the run that wrote it, changed by the flags given; with --resume, the resumed run's)."""
    source = args.checkpoint or options.resume
    checkpoint = load_checkpoint(source) if source else None
    if options.resume:
        config = resumed_config(checkpoint, options.resume, given, options.tokenizer)
    else:
        config = new_config(given, None if checkpoint is None else
                            effective(TrainConfig.from_dict(checkpoint.config)))
    table = dataclasses.asdict(options)
    recorded = checkpoint.data if checkpoint is not None else None
    table["data"] = options.data or (recorded["path"] if recorded else None)
    comments = [HEADER]
    if table["data"] is None:
        comments.append(f"# data: {source} does not record its text, give it with data = PATH"
                        if checkpoint is not None else
                        "# data: not given, so tinyshakespeare, shipped in the package")
    if checkpoint is not None and checkpoint.tokenizer is not None:
        table["tokenizer"] = options.tokenizer or checkpoint.tokenizer.kind
    elif checkpoint is None and options.tokenizer is None and not (
            options.data is not None and Path(options.data).is_dir()):  # a folder has its own
        table["tokenizer"] = DEFAULT_TOKENIZER
    table.update(effective(config))
    sys.stdout.write(toml_text({key: value for key, value in table.items()
                                if value is not None and value is not False}, comments))
    return 0


def effective(config):
    """The settings of a TrainConfig that a run uses: those set, and with an effect."""
    unused = config.unused_settings()
    return {name: value for name, value in config.to_dict().items()
            if value is not None and name not in unused}


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

"""Whether a model or data-set argument names a Hub repository or a local path: the one rule every loader uses.

A Hub id is `name` or `namespace/name` (the Hub still serves a few models without a namespace, e.g. `gpt2`); each
part is letters, digits, `_`, `-` and `.`, starts and ends with a letter, digit or `_`, and holds no `--` or `..`
(the Hub refuses such names), 96 characters at most. A string that exists on disk, or names a `.gguf` file (always
read from disk by `loading`), is a local path. Standard library only: the CLI checks its arguments with it before
importing torch.
"""

from __future__ import annotations

import os
import re

__all__ = ["is_repo_id", "is_hub_id"]

_PART = r"\w(?:[\w.-]*\w)?"
_HUB_ID = re.compile(rf"^(?:{_PART}/)?{_PART}$", re.ASCII)
_MAX_LENGTH = 96


def is_repo_id(name: str) -> bool:
    """Whether `name` is written as a Hub repository id (`"name"` or `"namespace/name"`), whatever is on disk."""
    return (
        isinstance(name, str)
        and len(name) <= _MAX_LENGTH
        and bool(_HUB_ID.match(name))
        and "--" not in name
        and ".." not in name
    )


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as a Hub repository id (`"name"` or `"namespace/name"`) and is not a local path.

    Args:
        name (`str`): a model or data-set argument as the user typed it.

    Returns:
        `bool`: `True` when a loader should ask the Hub for `name`; `False` for anything on disk, a `.gguf` file,
        or a string the Hub would refuse as a repository id (then it can only be a local path).
    """
    return is_repo_id(name) and not name.endswith(".gguf") and not os.path.exists(os.path.expanduser(name))

"""Where a checkpoint may be written, and how an existing one is replaced without losing a file.

Rules (checked before any work by the CLI, and again by `save_pretrained` before it writes):
- the output folder must be creatable: its nearest existing ancestor is a writable folder (not a file) on a disk
  with room for the weights;
- an existing folder is replaced (`overwrite=True`) only when it is empty, or when it is a checkpoint this
  library wrote and holds nothing else: its `config.json` has the `dpruner_sparsity` block, its
  `dpruner_config.json` lists the files of the save (`"written_files"`), and every entry of the folder is one of
  them. Any other file or folder (notes, scores, a `.git`, ...), or a side car without that list, makes the folder
  refused: nothing the library did not write is deleted;
- never the current directory, one of its parents, or the folder of the model being pruned (nor a parent of it);
- the new folder replaces the old one in a single atomic step (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two
  renames, the old folder put back if the second fails or is interrupted), so the target path always holds a
  complete checkpoint, old or new.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ..configuration import CONFIG_NAME
from ..errors import ConfigError
from .metadata import SPARSITY_KEY

__all__ = ["check_output_folder", "check_creatable", "replace_folder", "signals_deferred", "written_files", "MANIFEST_KEY"]

#: key of `dpruner_config.json` listing the files a save wrote (the only ones an overwrite may delete)
MANIFEST_KEY = "written_files"


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _contains(folder: str, path: str) -> bool:
    """Whether `path` is `folder` or inside it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def written_files(folder: str) -> list[str] | None:
    """The files a save of this library wrote into `folder` (the list recorded in `dpruner_config.json`), or `None`
    when it is not such a save."""
    side_car = _read_json(os.path.join(folder, CONFIG_NAME))
    config = _read_json(os.path.join(folder, "config.json"))
    if side_car is None or config is None or SPARSITY_KEY not in config or not isinstance(side_car.get("config"), dict):
        return None
    files = side_car.get(MANIFEST_KEY)
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


def _refuse(argument: str, target: str, why: str) -> ConfigError:
    return ConfigError(f"{argument}={target!r} {why}")


def _check_replaceable(argument: str, target: str, protected: Iterable[str]) -> None:
    real = os.path.realpath(target)
    if os.path.islink(target):
        raise _refuse(argument, target, "is a symbolic link; pass the folder it points to, or another folder.")
    if not os.path.isdir(target):
        raise _refuse(argument, target, "is a file, not a folder; choose another path.")
    cwd = os.path.realpath(os.getcwd())
    if _contains(real, cwd):
        raise _refuse(argument, target, "is the current directory or a parent of it; overwrite never replaces it: choose a new folder.")
    for source in protected:
        if _contains(real, os.path.realpath(source)):
            raise _refuse(argument, target, f"holds the model being pruned ({source}); write the pruned model to another folder.")
    entries = os.listdir(target)
    if not entries:
        return
    manifest = written_files(target)
    if manifest is None:
        raise _refuse(
            argument, target,
            f"is not a checkpoint written by optimum-dpruner (no {CONFIG_NAME} listing its {MANIFEST_KEY} beside a "
            f"config.json with {SPARSITY_KEY}); overwrite replaces only such a checkpoint or an empty folder: choose "
            "another folder, or empty it yourself.",
        )
    foreign = sorted(e for e in entries if e not in manifest or not os.path.isfile(os.path.join(target, e)))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise _refuse(
            argument, target,
            f"holds files optimum-dpruner did not write ({shown}); overwrite never deletes them: move them out or "
            "choose another folder.",
        )


def check_creatable(target: str | os.PathLike, argument: str, needed_bytes: int = 0) -> None:
    """`ConfigError` unless `target` can be created: its nearest existing ancestor is a writable folder with room.

    Args:
        target (`str`): the file or folder to be written.
        argument (`str`): the argument named in errors.
        needed_bytes (`int`, *optional*): bytes it will take; 0 skips the free-space check.
    """
    target = os.path.abspath(os.path.expanduser(os.fspath(target)))
    anchor = _nearest_existing(os.path.dirname(target))
    if not os.path.isdir(anchor):
        raise _refuse(argument, target, f"is under {anchor!r}, which is a file, not a folder; choose another path.")
    # A real write: permission bits, ACLs and read-only mounts all show here (os.access trusts root). An unnamed
    # file (O_TMPFILE on Linux) leaves nothing behind even when Ctrl-C lands mid-probe; elsewhere tempfile
    # names it and unlinks it at once.
    try:
        with tempfile.TemporaryFile(prefix=".dpruner-write-test-", dir=anchor):
            pass
    except OSError as e:
        raise _refuse(argument, target, f"cannot be written: {anchor!r} is not writable ({e.strerror}); choose another folder.") from None
    free = shutil.disk_usage(anchor).free
    if needed_bytes and free < needed_bytes:
        raise _refuse(
            argument, target,
            f"is on a disk with {free / 2**20:.0f} MiB free, but the checkpoint needs about {needed_bytes / 2**20:.0f} MiB; "
            "free some space or choose another disk.",
        )


def check_output_folder(
    target: str | os.PathLike,
    overwrite: bool = False,
    *,
    protected: Iterable[str] = (),
    needed_bytes: int = 0,
    argument: str = "save_directory",
) -> str:
    """Check that a checkpoint can be written to `target` before any work; return its absolute path.

    Args:
        target (`str`): the output folder.
        overwrite (`bool`, *optional*, defaults to `False`): whether an existing folder may be replaced (see the
            module docstring for which ones may).
        protected (`Iterable[str]`, *optional*): paths that must never be replaced (the input model's folder).
        needed_bytes (`int`, *optional*): bytes the checkpoint will take; 0 skips the free-space check.
        argument (`str`, *optional*, defaults to `"save_directory"`): the argument named in errors.

    Raises:
        `ConfigError`: the folder exists (without `overwrite`), may not be replaced, or cannot be written.
    """
    target = os.path.abspath(os.path.expanduser(os.fspath(target)))
    if os.path.lexists(target):
        if not overwrite:
            raise _refuse(argument, target, "already exists; pass overwrite=True or choose another folder.")
        _check_replaceable(argument, target, protected)
    check_creatable(target, argument, needed_bytes)
    return target


def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a libc without it
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: str, b: str) -> bool:
    """Swap the paths `a` and `b` atomically; `False` where the system or the filesystem cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), b)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (main thread only) for a few file-system calls that must not be cut in two (a
    staging folder made and its name kept; the old and the new folder swapped): a signal that arrives meanwhile is
    delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def replace_folder(new: str, target: str) -> None:
    """Move the complete folder `new` to `target`, replacing what is there without a moment where `target` is missing.

    The old folder is deleted only after the new one is in place. Where the atomic exchange is unavailable, the
    old folder is moved aside first and put back if the second rename fails or is interrupted.
    """
    if not os.path.lexists(target):
        os.replace(new, target)
        return
    with signals_deferred():
        if _exchange(new, target):
            old = new  # the exchange left the old folder where the new one was
        else:
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=os.path.dirname(target))
            aside = os.path.join(old, "x")
            try:
                os.replace(target, aside)
                os.replace(new, target)
            except BaseException:
                if os.path.lexists(aside) and not os.path.lexists(target):
                    os.replace(aside, target)
                shutil.rmtree(old, ignore_errors=True)
                raise
    shutil.rmtree(old, ignore_errors=True)

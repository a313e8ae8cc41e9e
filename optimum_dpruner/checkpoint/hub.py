"""Upload a saved pruned model to the Hugging Face Hub: one commit, retries on transient errors, clear auth errors.

Uses huggingface_hub's `HfApi` (`create_repo`, `create_branch`, `create_commit`), so `HF_ENDPOINT`, `HF_TOKEN`
and a token stored by `hf auth login` work as usual. The token is only ever handed to huggingface_hub: it never
appears in a message or a log line of this module.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigError, HubError
from ..models.hub_ids import is_repo_id

__all__ = ["push_to_hub", "RETRY_STATUS"]

logger = logging.getLogger(__name__)

#: HTTP statuses retried with backoff (besides connection errors, timeouts and dropped connections).
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_WAIT = 60.0
_TOKEN_HELP = "pass token=<a write token from https://huggingface.co/settings/tokens>, set HF_TOKEN, or run `hf auth login`"

T = TypeVar("T")


def _folder_files(folder: str) -> list[str]:
    """Paths (relative, POSIX) of the files to upload; hidden files and folders are skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if not name.startswith("."):
                found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return found


def _default_message(folder: str) -> str:
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            meta = json.load(f).get("dpruner_sparsity") or {}
    except (OSError, ValueError):
        meta = {}
    if meta:
        return f"Upload model pruned with optimum-dpruner ({meta.get('method')}, {meta.get('pattern')}, {meta.get('global_sparsity', 0):.1%} sparse)"
    return "Upload model with optimum-dpruner"


def _status_error(status: int | None, what: str, repo_id: str, has_token: bool, detail: str) -> HubError:
    if status == 401:
        found = "the token" if has_token else "the request (no token was found)"
        return HubError(f"the Hub rejected {found} with 401 Unauthorized while trying to {what} {repo_id!r}; {_TOKEN_HELP}.")
    if status == 403:
        return HubError(
            f"the token has no write access to {repo_id!r} (403 Forbidden) while trying to {what}; use a token with the "
            "'write' role for that namespace, or push to a namespace you own."
        )
    return HubError(f"the Hub answered {status} while trying to {what} {repo_id!r}: {detail}")


def _with_retries(
    action: Callable[[], T], what: str, repo_id: str, *, max_retries: int, retry_wait: float, has_token: bool, endpoint: str
) -> T:
    """Run `action`; retry 5xx/408/429 answers and connection errors with exponential backoff."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    for attempt in range(max_retries + 1):
        try:
            return action()
        except OfflineModeIsEnabled:
            raise HubError(f"cannot {what} {repo_id!r}: HF_HUB_OFFLINE=1 is set; unset it to push.") from None
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            detail = err.server_message or str(err).splitlines()[0]
            if status not in RETRY_STATUS:
                raise _status_error(status, what, repo_id, has_token, detail) from (None if status in (401, 403) else err)
            if attempt == max_retries:
                raise HubError(
                    f"the Hub answered {status} while trying to {what} {repo_id!r}, {attempt + 1} times; retry later "
                    "or raise max_retries."
                ) from err
            reason = f"HTTP {status}"
        except httpx2.TransportError as err:  # connection refused or dropped, timeouts
            if attempt == max_retries:
                raise HubError(
                    f"could not reach the Hub at {endpoint} while trying to {what} {repo_id!r} ({type(err).__name__}, "
                    f"{attempt + 1} attempts); check the network and HF_ENDPOINT, or retry later."
                ) from err
            reason = type(err).__name__
        delay = min(retry_wait * 2**attempt, _MAX_WAIT)
        logger.warning("Could not %s %s (%s); retry %d/%d in %.2f s", what, repo_id, reason, attempt + 1, max_retries, delay)
        time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    max_retries: int = 5,
    retry_wait: float = 1.0,
) -> str:
    """Upload a folder written by `save_pretrained` (weights, metadata, card and plot) to the Hub in one commit.

    The repository is created if needed (`exist_ok`), and the branch too when `revision` names a new one. Answers
    408, 429 and 5xx and connection errors are retried with exponential backoff (`retry_wait`, doubled each time,
    at most 60 s); the commit is rebuilt from the files on each attempt. (If the Hub applied a commit but its answer
    was lost, the retry commits the same files again: no change of content, one more commit in the history.)

    Args:
        folder (`str`): the saved model folder (must hold `config.json`). Hidden files are not uploaded.
        repo_id (`str`): `"namespace/name"` (or `"name"` for your own namespace).
        private (`bool`, *optional*): visibility of a newly created repository; the Hub default when `None`.
        token (`str`, *optional*): a write token; defaults to `HF_TOKEN` or the token of `hf auth login`.
        revision (`str`, *optional*): branch to commit to (created from `main` if missing); default `main`.
        create_pr (`bool`, *optional*, defaults to `False`): open a pull request instead of committing directly.
        commit_message (`str`, *optional*): defaults to a summary of the method and sparsity.
        max_retries (`int`, *optional*, defaults to 5): retries per request after a transient error.
        retry_wait (`float`, *optional*, defaults to 1.0): seconds before the first retry.

    Returns:
        `str`: the URL of the commit (of the pull request when `create_pr=True`).

    Raises:
        `ConfigError`: `folder` is not a saved model folder, or a bad argument.
        `HubError`: 401 (token rejected or missing), 403 (no write access), another error answer, or transient
            errors left after `max_retries` retries.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    folder = os.fspath(folder)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ConfigError(f"folder={folder!r} holds no config.json; save the model with save_pretrained first.")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries={max_retries!r} must be a non-negative integer, e.g. 5.")
    if not is_repo_id(repo_id):
        raise ConfigError(f"repo_id={repo_id!r} is not a Hub repository id; pass 'name' or 'namespace/name'.")
    files = _folder_files(folder)
    api = HfApi(token=token)
    retry: dict[str, Any] = {
        "max_retries": max_retries,
        "retry_wait": retry_wait,
        "has_token": bool(token or get_token()),
        "endpoint": api.endpoint,
    }
    repo = _with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), "create the repository", repo_id, **retry)
    repo_id = repo.repo_id or repo_id
    if revision not in (None, "main") and not create_pr:
        _with_retries(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), "create the branch of", repo_id, **retry)

    def commit():
        operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=os.path.join(folder, p)) for p in files]
        return api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or _default_message(folder),
            revision=revision,
            create_pr=create_pr,
        )

    info = _with_retries(commit, "upload to", repo_id, **retry)
    url = info.pr_url or info.commit_url
    logger.info("Uploaded %d files to %s in one commit: %s", len(files), repo_id, url)
    return url

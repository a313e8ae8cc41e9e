"""A loopback Hub-compatible HTTP server (standard library only) for upload tests with the real huggingface_hub client.

It serves the routes huggingface_hub uses to create a repository and commit to it (see
`/work/shared/docs/ecosystem.md` §5.2): `POST /api/repos/create`, `POST /api/validate-yaml`,
`POST /api/models/<repo>/preupload/<rev>` (every file "regular", so no LFS or Xet), `POST
/api/models/<repo>/commit/<rev>` (NDJSON), plus `POST /api/models/<repo>/branch/<name>`, `GET
/api/models/<repo>[/revision/<rev>]`, `GET /api/models/<repo>/tree/<rev>` and `GET|HEAD
/<repo>/resolve/<rev>/<path>` to read files back (`hf_hub_download`, `snapshot_download`).

Use it in-process (a background thread) while the client runs in the test or in a subprocess::

    with FakeHub(token="hf_good") as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1"}
        subprocess.run([...], env=env)
        assert hub.commits[0]["files"]["README.md"].startswith(b"---")

or standalone: `python tests/fake_hub.py [--token T] [--port P]` prints its URL and serves until killed.

Failures are injected with `hub.fail_next(status, count, path_contains)`; status 0 drops the connection without
an answer. With `token=...`, every API call must carry `Authorization: Bearer <token>` (else 401), and repositories
can only be created in the namespace `user` (else 403), as on the real Hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeHub"]

_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/branch/(?P<rev>[^/]+)$"), "create_branch"),
    ("GET", re.compile(rf"^/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?$"), "repo_info"),
    ("GET", re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("GET", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("HEAD", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


class _Failure:
    def __init__(self, status: int, count: int, path_contains: str) -> None:
        self.status, self.count, self.path_contains = status, count, path_contains


class FakeHub:
    """A Hub-compatible server on `127.0.0.1` and a free port (a context manager).

    Args:
        token (`str`, *optional*): when set, API calls need `Authorization: Bearer <token>` (401 otherwise) and
            repositories can be created only in the `user` namespace (403 otherwise).
        user (`str`, *optional*, defaults to `"user"`): the namespace of that token.
        port (`int`, *optional*, defaults to 0): the port; 0 picks a free one.

    Attributes:
        url (`str`): `http://127.0.0.1:<port>`, the value for `HF_ENDPOINT`.
        commits (`list[dict]`): one dict per accepted commit: `repo_id`, `revision`, `create_pr`, `summary`,
            `oid`, `files` (`{path: bytes}`).
        requests (`list[dict]`): every request: `method`, `path` (with query), `headers` (lower-case names),
            `status` answered (0 for a dropped connection).
        repos (`dict[str, dict]`): `repo_id -> {"private": bool, "branches": {name: {path: bytes}}}`.
    """

    def __init__(self, token: str | None = None, user: str = "user", port: int = 0) -> None:
        self.token, self.user = token, user
        self.commits: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.repos: dict[str, dict[str, Any]] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------------------- lifecycle
    def start(self) -> "FakeHub":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------------- test controls
    def fail_next(self, status: int, count: int = 1, path_contains: str = "") -> None:
        """Answer the next `count` requests whose path contains `path_contains` with `status` (0: drop the connection)."""
        with self._lock:
            self._failures.append(_Failure(status, count, path_contains))

    def requests_to(self, path_contains: str) -> list[dict[str, Any]]:
        """The logged requests whose path contains `path_contains`."""
        return [r for r in self.requests if path_contains in r["path"]]

    def _take_failure(self, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure.count > 0 and failure.path_contains in path:
                    failure.count -= 1
                    return failure.status
        return None


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        # ------------------------------------------------------------------------------ plumbing
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
            body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self._record["status"] = status

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            headers = {"X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, {"error": message}, headers)

        def _handle(self) -> None:
            split = urlsplit(self.path)
            path, query = unquote(split.path), parse_qs(split.query)
            body = self._body() if self.command in ("POST", "PUT") else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._record = {"method": self.command, "path": self.path, "headers": headers, "status": None}
            with hub._lock:
                hub.requests.append(self._record)
            failure = hub._take_failure(self.path)
            if failure == 0:
                self.close_connection = True
                self._record["status"] = 0
                return
            if failure is not None:
                return self._error(failure, f"injected {failure}")
            if path == "/api/agent-harnesses":
                return self._error(404, "not served by the fake Hub")
            for method, pattern, name in _ROUTES:
                match = pattern.match(path)
                if match and method == self.command:
                    if hub.token is not None and name != "resolve":
                        if self.headers.get("Authorization") != f"Bearer {hub.token}":
                            return self._error(401, "Invalid credentials in Authorization header")
                    return getattr(self, f"_{name}")(match.groupdict(), query, body)
            return self._error(404, f"no route for {self.command} {path}")

        do_GET = do_POST = do_HEAD = do_PUT = _handle

        # ------------------------------------------------------------------------------ routes
        def _repo(self, repo_id: str) -> dict[str, Any] | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "Repository not found", "RepoNotFound")
            return repo

        def _create_repo(self, groups: dict, query: dict, body: bytes) -> None:
            data = json.loads(body or b"{}")
            namespace = data.get("organization") or hub.user
            repo_id = f"{namespace}/{data['name']}"
            if hub.token is not None and namespace != hub.user:
                return self._error(403, f"You don't have the rights to create a model under the namespace \"{namespace}\"")
            url = f"{hub.url}/{repo_id}"
            with hub._lock:
                if repo_id in hub.repos:
                    return self._send(409, {"error": "You already created this model repo", "url": url})
                private = data.get("private", data.get("visibility") == "private")
                hub.repos[repo_id] = {"private": bool(private), "branches": {"main": {}}, "sha": {"main": "0" * 40}}
            self._send(200, {"url": url, "name": repo_id})

        def _validate_yaml(self, groups: dict, query: dict, body: bytes) -> None:
            import yaml

            content = json.loads(body).get("content", "")
            if content.startswith("---"):
                try:
                    meta = yaml.safe_load(content.split("---", 2)[1])
                except yaml.YAMLError as e:
                    return self._send(400, {"errors": [{"message": f"invalid YAML: {e}"}]})
                if meta is not None and not isinstance(meta, dict):
                    return self._send(400, {"errors": [{"message": "metadata must be a mapping"}]})
            self._send(200, {})

        def _preupload(self, groups: dict, query: dict, body: bytes) -> None:
            if self._repo(groups["repo"]) is None:
                return
            files = json.loads(body)["files"]
            self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})

        def _create_branch(self, groups: dict, query: dict, body: bytes) -> None:
            repo = self._repo(groups["repo"])
            if repo is None:
                return
            with hub._lock:
                if groups["rev"] in repo["branches"]:
                    return self._error(409, "Reference already exists")
                repo["branches"][groups["rev"]] = dict(repo["branches"]["main"])
                repo["sha"][groups["rev"]] = repo["sha"]["main"]
            self._send(200, {})

        def _commit(self, groups: dict, query: dict, body: bytes) -> None:
            repo_id, revision = groups["repo"], groups["rev"]
            repo = self._repo(repo_id)
            if repo is None:
                return
            create_pr = query.get("create_pr") == ["1"]
            if revision not in repo["branches"]:
                return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            header, files, deleted = {}, {}, []
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    header = item["value"]
                elif item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] in ("deletedFile", "deletedFolder"):
                    deleted.append(item["value"]["path"])
                else:
                    return self._error(400, f"the fake Hub does not support {item['key']!r} entries")
            oid = hashlib.sha1(body).hexdigest()
            with hub._lock:
                number = len(hub.commits) + 1
                hub.commits.append(
                    {"repo_id": repo_id, "revision": revision, "create_pr": create_pr, "summary": header.get("summary"),
                     "oid": oid, "files": files}
                )
                if not create_pr:
                    tree = repo["branches"][revision]
                    for path in deleted:
                        tree.pop(path, None)
                    tree.update(files)
                    repo["sha"][revision] = oid
            answer = {"success": True, "commitOid": oid, "commitUrl": f"{hub.url}/{repo_id}/commit/{oid}"}
            answer["pullRequestUrl"] = f"{hub.url}/{repo_id}/discussions/{number}" if create_pr else None
            self._send(200, answer)

        def _files_at(self, repo: dict[str, Any], rev: str) -> tuple[str, dict[str, bytes]] | None:
            """The commit id and files of a branch name or commit id; answers 404 and returns None if unknown."""
            for branch, sha in repo["sha"].items():
                if rev in (branch, sha):
                    return sha, repo["branches"][branch]
            self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return None

        def _repo_info(self, groups: dict, query: dict, body: bytes) -> None:
            repo = self._repo(groups["repo"])
            found = repo and self._files_at(repo, groups.get("rev") or "main")
            if found:
                sha, files = found
                siblings = [{"rfilename": p} for p in sorted(files)]
                self._send(200, {"id": groups["repo"], "sha": sha, "private": repo["private"], "siblings": siblings})

        def _tree(self, groups: dict, query: dict, body: bytes) -> None:
            repo = self._repo(groups["repo"])
            found = repo and self._files_at(repo, groups["rev"])
            if found:
                prefix = (groups.get("path") or "").strip("/")
                entries = [
                    {"type": "file", "path": p, "size": len(data), "oid": _git_oid(data)}
                    for p, data in sorted(found[1].items())
                    if not prefix or p.startswith(prefix + "/")
                ]
                self._send(200, entries)

        def _resolve(self, groups: dict, query: dict, body: bytes) -> None:
            repo = self._repo(groups["repo"])
            found = repo and self._files_at(repo, groups["rev"])
            if found:
                sha, files = found
                if groups["path"] not in files:
                    return self._error(404, "Entry not found", "EntryNotFound")
                data = files[groups["path"]]
                self._send(200, raw=data, headers={"ETag": f'"{_git_oid(data)}"', "X-Repo-Commit": sha})

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until killed; print the URL on the first line (for a parent process to read)."""
    import argparse

    parser = argparse.ArgumentParser(description="Loopback Hub-compatible server for tests.")
    parser.add_argument("--token", default=None, help="token the server accepts (default: any request)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = parser.parse_args(argv)
    hub = FakeHub(token=args.token, port=args.port)
    print(hub.url, flush=True)
    try:
        hub._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        hub._server.server_close()


if __name__ == "__main__":
    main()

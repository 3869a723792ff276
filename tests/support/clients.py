"""Real clients for live registries: a skopeo runner and a small Distribution API client.

``Skopeo`` runs the skopeo executable with an isolated auth file (so nothing from
``~/.docker`` or ``$XDG_RUNTIME_DIR`` leaks in), ``--insecure-policy`` and plain HTTP.
``RegistryClient`` speaks /v2/ with ``requests``: it answers a Bearer challenge by asking the
realm for a token (with Basic credentials or anonymously) and otherwise uses Basic.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from .servers import ServerError

_REPO_PATH = re.compile(r"/v2/(?P<name>.+?)/(manifests|blobs|tags|referrers)/")
DEFAULT_TIMEOUT = float(os.environ.get("E2E_CLIENT_TIMEOUT", "600"))


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n-> exit {self.returncode} in {self.seconds:.2f}s\n"
            f"{self.stdout[-3000:]}{self.stderr[-3000:]}"
        )


def _creds(value: tuple[str, str] | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return f"{value[0]}:{value[1]}"
    return value


class Skopeo:
    """skopeo with an empty, private auth file and plain HTTP to loopback registries."""

    def __init__(self, executable: str | None = None, workdir: str | os.PathLike | None = None):
        self.executable = executable or shutil.which("skopeo")
        if not self.executable:
            raise ServerError("skopeo is not installed")
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="skopeo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.auth_file = self.workdir / "auth.json"
        self.auth_file.write_text('{"auths": {}}')

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["REGISTRY_AUTH_FILE"] = str(self.auth_file)
        return env

    def run(self, *args: str, timeout: float = DEFAULT_TIMEOUT, check: bool = False) -> Result:
        argv = [self.executable, *args]
        started = time.monotonic()
        try:
            completed = subprocess.run(
                argv, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
            )
            result = Result(
                argv,
                completed.returncode,
                completed.stdout,
                completed.stderr,
                time.monotonic() - started,
            )
        except subprocess.TimeoutExpired as exc:
            result = Result(
                argv,
                -1,
                (exc.stdout or b"").decode(errors="replace")
                if isinstance(exc.stdout, bytes)
                else exc.stdout or "",
                f"timed out after {timeout}s",
                time.monotonic() - started,
            )
        if check and not result.ok:
            raise AssertionError(f"skopeo failed:\n{result}")
        return result

    def copy(
        self,
        source: str,
        destination: str,
        *,
        src_creds=None,
        dest_creds=None,
        all_images: bool = False,
        extra: tuple[str, ...] = (),
        check: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Result:
        """``skopeo copy``; ``docker://`` ends get ``--*-tls-verify=false`` and creds."""
        args = ["--insecure-policy", "copy"]
        if all_images:
            args.append("--all")
        if source.startswith("docker://"):
            args.append("--src-tls-verify=false")
            if src_creds is not None:
                args.append(f"--src-creds={_creds(src_creds)}")
            else:
                args.append("--src-no-creds")
        if destination.startswith("docker://"):
            args.append("--dest-tls-verify=false")
            if dest_creds is not None:
                args.append(f"--dest-creds={_creds(dest_creds)}")
            else:
                args.append("--dest-no-creds")
        args += [*extra, source, destination]
        return self.run(*args, check=check, timeout=timeout)

    def push(self, layout: str | os.PathLike, tag: str, target: str, *, creds=None, **kw):
        """Push ``oci:LAYOUT:TAG`` to ``docker://TARGET`` (``host:port/name:tag``)."""
        return self.copy(f"oci:{layout}:{tag}", f"docker://{target}", dest_creds=creds, **kw)

    def pull(self, target: str, layout: str | os.PathLike, tag: str, *, creds=None, **kw):
        """Pull ``docker://TARGET`` into ``oci:LAYOUT:TAG``."""
        return self.copy(f"docker://{target}", f"oci:{layout}:{tag}", src_creds=creds, **kw)

    def inspect(self, target: str, *, creds=None, raw: bool = False, config: bool = False):
        args = ["inspect", "--tls-verify=false"]
        args.append(f"--creds={_creds(creds)}" if creds is not None else "--no-creds")
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        return self.run(*args, f"docker://{target}")

    def delete(self, target: str, *, creds=None):
        args = ["delete", "--tls-verify=false"]
        if creds is not None:
            args.append(f"--creds={_creds(creds)}")
        return self.run(*args, f"docker://{target}")

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    key = value = ""
    i = 0
    # key="value",key="value" where values may contain commas (scope="...:pull,push")
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip()
        if rest[eq + 1 : eq + 2] == '"':
            end = rest.find('"', eq + 2)
            end = len(rest) if end < 0 else end
            value = rest[eq + 2 : end]
            i = end + 1
        else:
            end = rest.find(",", eq + 1)
            end = len(rest) if end < 0 else end
            value = rest[eq + 1 : end]
            i = end
        params[key.lower()] = value
        while i < len(rest) and rest[i] in ", ":
            i += 1
    return scheme.lower(), params


class RegistryClient:
    """A minimal /v2/ client: token auth from the challenge, or Basic, or anonymous.

    It asks the token service for exactly the scopes a challenge names (split on spaces,
    one ``scope`` parameter each, as containerd does). With ``token_only`` it never sends
    Basic credentials to /v2/ itself, only to the token realm, as docker does.
    """

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        token_only: bool = False,
    ):
        self.base_url = base_url.rstrip("/")
        self.auth = (username, password) if username is not None else None
        self.token_only = token_only
        self.session = requests.Session()
        self._tokens: dict[tuple[str, bool], str] = {}
        self.token_requests: list[dict] = []

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def token(self, params: dict[str, str]) -> str | None:
        query: dict[str, str | list[str]] = {"service": params.get("service", "")}
        if params.get("scope"):
            query["scope"] = params["scope"].split()
        self.token_requests.append(query)
        response = self.session.get(params["realm"], params=query, auth=self.auth, timeout=30)
        if response.status_code != 200:
            return None
        body = response.json()
        return body.get("token") or body.get("access_token")

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """A request; on a 401 Bearer challenge, get a token for its scope and retry once."""
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", True)
        headers = dict(kwargs.pop("headers", None) or {})
        match = _REPO_PATH.match(path.replace(self.base_url, "").split("?")[0])
        cache_key = (match["name"] if match else "", method not in {"GET", "HEAD"})
        if cache_key in self._tokens:
            headers["Authorization"] = f"Bearer {self._tokens[cache_key]}"
        elif self.auth is not None and not self.token_only:
            basic = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            headers.setdefault("Authorization", f"Basic {basic}")
        response = self.session.request(method, self.url(path), headers=headers, **kwargs)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(challenge)
        if scheme != "bearer" or "realm" not in params:
            return response
        token = self.token(params)
        if token is None:
            return response
        self._tokens[cache_key] = token
        headers["Authorization"] = f"Bearer {token}"
        data = kwargs.get("data")
        if hasattr(data, "seek"):
            data.seek(0)
        return self.session.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs) -> requests.Response:
        return self.request("HEAD", path, **kwargs)

    def referrers(self, name: str, digest: str, artifact_type: str | None = None):
        params = {"artifactType": artifact_type} if artifact_type else None
        return self.get(f"/v2/{name}/referrers/{digest}", params=params)

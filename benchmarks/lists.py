"""Lists at scale: 100,000 tags in one repository on PostgreSQL, timed on every surface.

A live portal (the `make run` gunicorn configuration) on a fresh PostgreSQL database, seeded
in bulk: `dev/website` with 100,000 tags, plus 100 repositories of another organization
with 10,000 tags between them that the caller may not see (pushed as recently, so a list of
"my tags" must skip them). The caller is `dev`'s org admin, not a superuser.

Timed (median and p95 of 20 requests after 5 warm-ups), with the targets of issue #16:
- the Tags tab of `dev/website`, first page and a page deep in the list;
- `GET /api/v1/tags/?repository=dev/website` and the unfiltered `GET /api/v1/tags/` (<= 50 ms),
  and the next cursor page of each;
- `GET /v2/dev/website/tags/list` with all 100,000 names, and `?n=100`.

With --explain, the plan (EXPLAIN ANALYZE) of the slowest query of each API request.

    python -m benchmarks.lists [--tags N] [--explain] [--json]

PostgreSQL: DATABASE_URL when it names one, else postgres@127.0.0.1:5432 when it answers
(a database of its own is created and dropped); otherwise the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.servers import PortalServer  # noqa: E402

USER = ("list-lead", "list-lead-Pw-2024")
TARGET_MS = 50.0

SEED = r"""
import datetime, hashlib, json, os
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone
from registry_portal.accounts import services as accounts
from registry_portal.registry import services as registry
from registry_portal.registry.models import Manifest, Tag

count = int(os.environ["BENCH_TAGS"])
user = get_user_model().objects.create_user(username="list-lead", password="list-lead-Pw-2024")
dev = accounts.organization_create(name="dev", admin=user)
other = accounts.organization_create(name="other")
website = registry.repository_create(namespace=dev, name="website")
hidden = [registry.repository_create(namespace=other, name=f"app{i}") for i in range(100)]
manifests = []
for i in range(100):
    content = json.dumps({"schemaVersion": 2, "mediaType":
        "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType":
        "application/vnd.oci.image.config.v1+json", "size": 2, "digest": "sha256:" +
        hashlib.sha256(str(i).encode()).hexdigest()}, "layers": []}).encode()
    manifests.append(Manifest.objects.create(
        digest="sha256:" + hashlib.sha256(content).hexdigest(),
        media_type="application/vnd.oci.image.manifest.v1+json", content=content,
        size=len(content)))
start = timezone.now() - datetime.timedelta(days=30)
rows = [Tag(repository=website, name=f"build-{i:06d}", manifest=manifests[i % 100],
            pushed_at=start + datetime.timedelta(seconds=10 * i)) for i in range(count)]
rows += [Tag(repository=hidden[i % 100], name=f"v{i:06d}", manifest=manifests[i % 100],
             pushed_at=start + datetime.timedelta(seconds=10 * count + i))
         for i in range(count // 10)]
Tag.objects.bulk_create(rows, batch_size=5000)
_, secret = accounts.access_token_create(user=user, name="bench")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
print("SEED " + json.dumps({"token": secret, "session": session.session_key}))
"""

EXPLAIN = r"""
import os
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="list-lead"))
for url in os.environ["BENCH_URLS"].split():
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    print(f"== {url} ({len(queries)} queries, slowest {float(slowest['time'])*1000:.1f} ms)")
    print(slowest["sql"][:600])
    print(plan)
"""


def postgres_admin_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url
    try:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2):
            return "postgres://postgres@127.0.0.1:5432/postgres"
    except Exception:
        return None


def timed(get, url: str, *, warmups: int = 5, repeats: int = 20) -> dict:
    for _ in range(warmups):
        response = get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code} {response.text[:200]}")
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = get(url)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    seconds.sort()
    return {
        "url": url,
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))] * 1000, 1),
        "bytes": len(response.content),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    admin_url = postgres_admin_url()
    if admin_url is None:
        print("lists benchmark: needs PostgreSQL (DATABASE_URL or 127.0.0.1:5432); skipped")
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="bench-lists-") as data,
        PortalServer(data, database_url=admin_url, access_log=False) as server,
    ):
        seeded_at = time.monotonic()
        output = server.manage("shell", "-c", SEED, env={"BENCH_TAGS": str(args.tags)})
        seed = json.loads(output.split("SEED ", 1)[1])
        seed_seconds = time.monotonic() - seeded_at
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {seed['token']}"
        pages = requests.Session()
        pages.cookies.set("sessionid", seed["session"])
        # /v2/ as clients call it: with a bearer token from the token service (Basic on every
        # request would time the password hash instead of the list).
        token = requests.get(
            f"{server.url}/auth/token",
            params={"service": server.host, "scope": "repository:dev/website:pull"},
            auth=USER,
            timeout=30,
        ).json()["token"]
        registry = requests.Session()
        registry.headers["Authorization"] = f"Bearer {token}"

        def v2_get(url):
            return registry.get(server.url + url, timeout=60)

        def api_get(url):
            return api.get(server.url + url, timeout=60)

        results = []
        for path in ("/api/v1/tags/?repository=dev/website", "/api/v1/tags/"):
            results.append(timed(api_get, path))
            next_url = api_get(path).json()["next"].replace(server.url, "")
            results.append(timed(api_get, next_url))
        page_url = "/repos/dev/website/-/tags/"
        results.append(timed(lambda url: pages.get(server.url + url, timeout=60), page_url))
        deep = f"{page_url}?page={args.tags // 50 // 2}"
        results.append(timed(lambda url: pages.get(server.url + url, timeout=60), deep))
        results.append(timed(v2_get, "/v2/dev/website/tags/list", repeats=10))
        results.append(timed(v2_get, "/v2/dev/website/tags/list?n=100"))
        plans = ""
        if args.explain:
            plans = server.manage(
                "shell",
                "-c",
                EXPLAIN,
                env={"BENCH_URLS": "/api/v1/tags/?repository=dev/website /api/v1/tags/"},
            )
    failed = [
        r
        for r in results
        if r["url"].startswith("/api/v1/tags/")
        and "cursor" not in r["url"]
        and r["median_ms"] > TARGET_MS
    ]
    if args.json:
        print(json.dumps({"tags": args.tags, "results": results, "met": not failed}, indent=2))
    else:
        print(
            f"Lists with {args.tags} tags in dev/website (seeded in {seed_seconds:.0f} s),"
            f" PostgreSQL, as an org admin:"
        )
        for r in results:
            print(
                f"  {r['median_ms']:8.1f} ms median {r['p95_ms']:8.1f} ms p95"
                f"  {r['bytes']:>9} B  {r['url'][:90]}"
            )
        print(f"  API tag lists <= {TARGET_MS:.0f} ms: {'met' if not failed else 'NOT met'}")
        if plans:
            print(plans)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())

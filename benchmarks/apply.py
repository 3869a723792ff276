"""Save & Apply benchmark: one policy applied to a repository of 10,000 tags.

The policy (tag name starts with "release-", template "%n-qa") matches one tag in ten, so
the job decides 10,000 tags and promotes 1,000 of them into the target. Measured: the apply
job's time and query count, then the same revision applied again (nothing to promote: every
tag was recorded). The job is batched (``promotions.services.APPLY_BATCH`` tags per read),
so deciding and recording costs a fixed number of queries per batch; each promotion is one
push into the target.

Runs in-process on a fresh SQLite database in a temporary data dir (or the database of
BENCH_DATABASE_URL, which it migrates). The tags are bulk-inserted as setup, not measured.

    python -m benchmarks.apply [--tags N] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.scanning import _setup_django  # noqa: E402

MATCH_EVERY = 10


def _world(tag_count: int):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from promotions import services
    from registry_portal.accounts import services as accounts
    from registry_portal.registry.models import Manifest, Repository, RepositoryManifest, Tag

    lead = get_user_model().objects.create_user(username="bench-lead", password=None)
    lead.is_superuser = True
    lead.save()
    dev = accounts.organization_create(name="dev", admin=lead)
    qa = accounts.organization_create(name="qa", admin=lead)
    source = Repository.objects.create(namespace=dev, name="many")
    target = Repository.objects.create(namespace=qa, name="many")
    manifests = []
    for number in range(tag_count):
        content = json.dumps({"schemaVersion": 2, "n": number}).encode()
        manifests.append(
            Manifest(
                digest="sha256:" + hashlib.sha256(content).hexdigest(),
                media_type="application/vnd.oci.image.manifest.v1+json",
                content=content,
                size=len(content),
            )
        )
    Manifest.objects.bulk_create(manifests, batch_size=1000)
    manifests = list(Manifest.objects.order_by("pk"))
    RepositoryManifest.objects.bulk_create(
        [RepositoryManifest(repository=source, manifest=m) for m in manifests], batch_size=1000
    )
    now = timezone.now()
    Tag.objects.bulk_create(
        [
            Tag(
                repository=source,
                name=f"release-{n}" if n % MATCH_EVERY == 0 else f"build-{n}",
                manifest=manifest,
                pushed_at=now,
            )
            for n, manifest in enumerate(manifests)
        ],
        batch_size=1000,
    )
    policy = services.policy_create(
        actor=lead,
        source=source,
        target=target,
        name="releases",
        rules=[{"field": "tag_name", "operator": "sw", "values": ["release-"]}],
        tag_template="%n-qa",
    )
    return lead, policy, target


def _timed_apply(lead, policy) -> dict:
    from django.db import connection

    from promotions import services

    queries = []

    def count(execute, sql, params, many, context):
        queries.append(1)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        records = services.policy_apply(actor=lead, policy=policy)
        seconds = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for record in records:
        outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
    return {"seconds": round(seconds, 2), "queries": len(queries), "outcomes": outcomes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as data_dir:
        _setup_django(data_dir)
        from django.db import connection

        # The promoted tags' own jobs (scan, chain) are queued as on a push; no worker runs.
        lead, policy, target = _world(args.tags)
        first = _timed_apply(lead, policy)
        again = _timed_apply(lead, policy)
        result = {
            "tags": args.tags,
            "database": connection.vendor,
            "first": first,
            "again": again,
            "target_tags": target.tags.count(),
        }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"Apply of one policy to {result['tags']:,} tags ({result['database']}): "
            f"{first['seconds']} s, {first['queries']:,} queries, {first['outcomes']}; "
            f"the same revision again: {again['seconds']} s, {again['queries']} queries "
            f"(target holds {result['target_tags']:,} tags)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

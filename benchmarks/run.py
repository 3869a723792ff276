"""Side-by-side benchmark: this portal against Debian's docker-registry (distribution 2.8).

Both run on loopback, each with its own temp disk directory: the portal under gunicorn with
``registry_portal/gunicorn.conf.py`` (what ``make run`` uses; SQLite, or ``DATABASE_URL``
when set, in a fresh database), the reference with no auth. skopeo measures, in one run:

- push, then pull, of one image with a single 256 MiB random layer;
- push of 50 small images (5 small layers each), one after the other;
- 8 concurrent pushes of distinct images.

The portal is used with Basic credentials of an organization admin; both over plain HTTP.
Errors are the skopeo runs that failed plus the 429 and 5xx answers in each server's access
log. Targets: large blob within 1.25x of the reference, small images within 2x, and zero
errors under concurrency.

    python -m benchmarks.run [--quick] [--json] [--strict] [--repeat N]

With --repeat N the scenarios run N times with fresh content, alternating which registry
goes first, and the table shows medians (this machine is shared: single runs are noisy).

Exit status: 0 when it ran (1 with ``--strict`` when a target is missed), 2 when skopeo or
docker-registry is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/run.py`
    sys.path.insert(0, str(REPO_ROOT))

from tests.support import images  # noqa: E402
from tests.support.clients import Skopeo  # noqa: E402
from tests.support.servers import PortalServer, ReferenceRegistry  # noqa: E402

MIB = 1024 * 1024
BENCH_USER = ("bench-admin", "bench-admin-Pw-2024")
NAMESPACE = "bench"


@dataclass
class Sizes:
    large_mib: int = 256
    small_images: int = 50
    small_layers: int = 5
    small_layer_bytes: int = 4096
    concurrent: int = 8
    concurrent_layers: int = 3
    concurrent_layer_bytes: int = 4 * MIB
    repeat: int = 1

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            large_mib=32,
            small_images=10,
            concurrent=8,
            concurrent_layers=2,
            concurrent_layer_bytes=512 * 1024,
        )


@dataclass
class Side:
    samples: list[float] = field(default_factory=list)
    failed_runs: int = 0
    status_429: int = 0
    status_5xx: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """The median of the rounds (the machine may be shared: one round can be noisy)."""
        return statistics.median(self.samples) if self.samples else 0.0

    @property
    def errors(self) -> int:
        return self.failed_runs + self.status_429 + self.status_5xx


@dataclass
class Scenario:
    name: str
    target: str
    limit: float | None  # maximum ratio portal/reference, None when only errors matter
    reference: Side = field(default_factory=Side)
    portal: Side = field(default_factory=Side)
    zero_errors: bool = False

    @property
    def ratio(self) -> float | None:
        if self.reference.seconds <= 0:
            return None
        return self.portal.seconds / self.reference.seconds

    @property
    def met(self) -> bool:
        ok = self.portal.errors == 0 if self.zero_errors else True
        if self.limit is not None and self.ratio is not None:
            ok = ok and self.ratio <= self.limit
        return ok and self.portal.failed_runs == 0


class Registry:
    """One side of the comparison: where to push, with which credentials."""

    def __init__(self, label: str, server, creds):
        self.label = label
        self.server = server
        self.creds = creds
        self.round = 0

    def ref(self, name: str, tag: str) -> str:
        return f"{self.server.host}/{NAMESPACE}/{name}-r{self.round}:{tag}"


def _measure(registry: Registry, side: Side, runs) -> None:
    """Run ``runs`` (callables returning skopeo Results) and fill ``side``."""
    offset = registry.server.log_size()
    started = time.monotonic()
    results = runs()
    side.samples.append(time.monotonic() - started)
    for result in results:
        if not result.ok:
            side.failed_runs += 1
            side.failures.append(str(result)[-1500:])
    statuses = registry.server.status_counts(since=offset)
    side.status_429 += statuses.get(429, 0)
    side.status_5xx += sum(n for status, n in statuses.items() if status >= 500)


def build_images(workdir: Path, sizes: Sizes, log) -> dict:
    started = time.monotonic()
    large = workdir / "large"
    images.write_image(
        large,
        tag="v1",
        layers=[images.LayerSpec(random_size=sizes.large_mib * MIB, gzip=True)],
    )
    small = []
    for i in range(sizes.small_images):
        layout = workdir / f"small-{i}"
        images.write_image(
            layout,
            tag="v1",
            layers=images.small_layers(sizes.small_layers, size=sizes.small_layer_bytes),
        )
        small.append(layout)
    concurrent = []
    for i in range(sizes.concurrent):
        layout = workdir / f"concurrent-{i}"
        images.write_image(
            layout,
            tag="v1",
            layers=images.small_layers(sizes.concurrent_layers, size=sizes.concurrent_layer_bytes),
        )
        concurrent.append(layout)
    warmup = workdir / "warmup"
    images.write_image(warmup, tag="v1", layers=images.small_layers(2, size=1024))
    log(f"built the test images in {time.monotonic() - started:.1f}s")
    return {"large": large, "small": small, "concurrent": concurrent, "warmup": warmup}


def run_benchmark(sizes: Sizes, workdir: Path, log) -> tuple[list[Scenario], dict]:
    built = build_images(workdir / "images-0", sizes, log)
    skopeo = Skopeo(workdir=workdir / "skopeo")
    scenarios = [
        Scenario(f"push 1 x {sizes.large_mib} MiB layer", "<= 1.25x", 1.25),
        Scenario(f"pull 1 x {sizes.large_mib} MiB layer", "<= 1.25x", 1.25),
        Scenario(
            f"push {sizes.small_images} small images ({sizes.small_layers} layers)", "<= 2x", 2.0
        ),
        Scenario(f"{sizes.concurrent} concurrent pushes", "0 errors", None, zero_errors=True),
    ]
    with (
        ReferenceRegistry(workdir / "reference") as reference_server,
        PortalServer(workdir / "portal") as portal_server,
    ):
        portal_server.setup(
            {
                "users": [{"username": BENCH_USER[0], "password": BENCH_USER[1]}],
                "orgs": [{"name": NAMESPACE, "admins": [BENCH_USER[0]]}],
            }
        )
        sides = [
            Registry("reference", reference_server, None),
            Registry("portal", portal_server, BENCH_USER),
        ]
        environment = {
            "portal_database": "postgresql" if portal_server.database_url else "sqlite",
            "portal_server": "gunicorn -c registry_portal/gunicorn.conf.py",
        }
        push_large, pull_large, small, concurrent = scenarios
        for round_no in range(sizes.repeat):
            if round_no:  # fresh content, or the registries would already have every blob
                shutil.rmtree(workdir / f"images-{round_no - 1}", ignore_errors=True)
                built = build_images(workdir / f"images-{round_no}", sizes, log)
            large = built["large"]
            # Alternate who goes first, so neither always gets the warmer machine.
            order = sides if round_no % 2 == 0 else sides[::-1]
            for registry in order:
                registry.round = round_no
                side = lambda scenario, r=registry: getattr(scenario, r.label)  # noqa: E731
                # Not measured: first requests load code, open connections, make signing keys.
                for n in range(4 if round_no == 0 else 0):
                    ref = registry.ref("warmup", f"w{n}")
                    skopeo.push(built["warmup"], "v1", ref, creds=registry.creds)
                    skopeo.pull(
                        ref, workdir / f"warmup-{registry.label}-{n}", "v1", creds=registry.creds
                    )
                log(f"[{registry.label}] push large")
                _measure(
                    registry,
                    side(push_large),
                    lambda r=registry, src=large: [
                        skopeo.push(src, "v1", r.ref("large", "v1"), creds=r.creds)
                    ],
                )
                log(f"[{registry.label}] pull large")
                pulled = workdir / f"pulled-{registry.label}-{round_no}"
                _measure(
                    registry,
                    side(pull_large),
                    lambda r=registry, out=pulled: [
                        skopeo.pull(r.ref("large", "v1"), out, "v1", creds=r.creds)
                    ],
                )
                if side(pull_large).failed_runs == 0:
                    problems = list(
                        images.iter_problems(
                            images.read_layout(large, "v1"), images.read_layout(pulled, "v1")
                        )
                    )
                    if problems:
                        side(pull_large).failed_runs += 1
                        side(pull_large).failures.append(
                            "pulled image differs: " + "; ".join(problems)
                        )
                shutil.rmtree(pulled, ignore_errors=True)

                log(f"[{registry.label}] push {len(built['small'])} small images")
                _measure(
                    registry,
                    side(small),
                    lambda r=registry, layouts=built["small"]: [
                        skopeo.push(layout, "v1", r.ref(f"small-{i}", "v1"), creds=r.creds)
                        for i, layout in enumerate(layouts)
                    ],
                )

                log(f"[{registry.label}] {len(built['concurrent'])} concurrent pushes")

                def concurrent_pushes(r=registry, layouts=built["concurrent"]):
                    with ThreadPoolExecutor(max_workers=len(layouts)) as pool:
                        futures = [
                            pool.submit(
                                skopeo.push,
                                layout,
                                "v1",
                                r.ref(f"concurrent-{i}", "v1"),
                                creds=r.creds,
                            )
                            for i, layout in enumerate(layouts)
                        ]
                        return [future.result() for future in futures]

                _measure(registry, side(concurrent), concurrent_pushes)
        tracebacks = portal_server.tracebacks()
        environment["portal_tracebacks"] = len(tracebacks)
        if tracebacks:
            log("the portal logged tracebacks; the first one:\n" + tracebacks[0][-3000:])
    return scenarios, environment


def _versions() -> dict:
    def first_line(*argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    return {
        "skopeo": first_line("skopeo", "--version"),
        "docker-registry": first_line("docker-registry", "--version"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def render_table(scenarios: list[Scenario]) -> str:
    header = ("scenario", "reference s", "portal s", "ratio", "errors ref/portal", "target", "")
    rows = [header]
    for s in scenarios:
        ratio = f"{s.ratio:.2f}x" if s.ratio is not None else "-"
        rows.append(
            (
                s.name,
                f"{s.reference.seconds:.2f}",
                f"{s.portal.seconds:.2f}",
                ratio,
                f"{s.reference.errors}/{s.portal.errors}",
                s.target,
                "ok" if s.met else "MISSED",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--large-mib", type=int, help="size of the large layer (MiB)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds (alternating order); medians are shown"
    )
    parser.add_argument("--workdir", help="where to put images and server data (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    missing = [tool for tool in ("skopeo", "docker-registry") if shutil.which(tool) is None]
    if missing:
        print(
            f"benchmark: missing {', '.join(missing)}. Install them with:\n"
            "  sudo apt-get install -y skopeo docker-registry\n"
            "(`make bench` does that for you).",
            file=sys.stderr,
        )
        return 2

    sizes = Sizes.quick() if args.quick else Sizes()
    if args.large_mib:
        sizes.large_mib = args.large_mib
    sizes.repeat = max(1, args.repeat)

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="portal-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        scenarios, environment = run_benchmark(sizes, workdir, log)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    environment.update(_versions())
    met = all(s.met for s in scenarios)

    if args.json:
        payload = {
            "sizes": asdict(sizes),
            "environment": environment,
            "scenarios": [
                {
                    "name": s.name,
                    "reference_seconds": round(s.reference.seconds, 3),
                    "portal_seconds": round(s.portal.seconds, 3),
                    "ratio": round(s.ratio, 3) if s.ratio is not None else None,
                    "target": s.target,
                    "met": s.met,
                    "reference": asdict(s.reference),
                    "portal": asdict(s.portal),
                }
                for s in scenarios
            ],
            "all_targets_met": met,
        }
        print(json.dumps(payload, indent=2))
    else:
        print(render_table(scenarios))
        print(
            f"\nportal: {environment['portal_server']}, {environment['portal_database']}; "
            f"{environment['skopeo']}; {environment['docker-registry']}; "
            f"{environment['cpus']} CPUs"
        )
        for s in scenarios:
            for label in ("reference", "portal"):
                side = getattr(s, label)
                if side.errors:
                    print(
                        f"\n{s.name} / {label}: {side.failed_runs} failed runs, "
                        f"{side.status_429} x 429, {side.status_5xx} x 5xx"
                    )
                    for failure in side.failures[:2]:
                        print("  " + failure.replace("\n", "\n  "))
        print("\nall targets met" if met else "\nsome targets were MISSED")
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())

"""The batch flood: ``python -m client batch`` on 10,000 images against ``make run``'s processes.

    .venv/bin/python -m bench.batch_flood [--images 10000] [--quick]

In one run: the machine's limit (in-process decode + preprocess + LiteRT, ``bench.throughput.limit``);
then, on ``make run``'s processes (``bench.as_shipped.running_make_run``) on MariaDB and RabbitMQ, single multipart
POSTs as the per-image client sends them, and the batch client on a folder cycling ../shared/images
(batches of 1000, 4 in flight). Prints images/s as a fraction of the limit, CPU-ms per image of each
process group, and the web's CPU per image of a batch against a single POST; then the same on
``make run``'s embedded default (SQLite and the embedded broker) and its images/s against the first.
``bench.throughput`` runs both as its batch-flood rows. ``--quick`` (2,000 images, a smaller limit
run) takes a few minutes.
"""

import argparse
import itertools
import re
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import profile_web
from bench.as_shipped import running_make_run
from bench.cpu import LOAD_GENERATOR, OTHER, SERVICE_GROUPS, CpuMeter, listener_pid
from bench.fairness import embedded_env
from client.batch import post_image
from client.batches import run_batches
from config.settings import PROJECT_ROOT
from deploy.harness import AMQP_URL, MYSQL_SERVER_URL, create_database, delete_queues, deployment_env, drop_database

PROFILES = PROJECT_ROOT / "instance" / "profiles"
PROJECT_FRAME = re.compile(r"\((?:webapp|jobs|tasks|models|config)/")
SINGLE_POSTS = 300  # single multipart POSTs whose web CPU a batch's per-image cost is set against


def folder_of(count: int, files: list[Path], folder: Path) -> list[Path]:
    """``count`` uniquely named links cycling ``files``: a folder as a user would have it."""
    paths = []
    for index, source in zip(range(count), itertools.cycle(files)):
        link = folder / f"{index:05d}-{source.name}"
        link.symlink_to(source)
        paths.append(link)
    return paths


def drained(database_url: str, timeout: float = 600) -> None:
    """Wait until no job of ``database_url`` is pending."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while connection.execute(text("SELECT COUNT(*) FROM predictions WHERE status = 'pending'")).scalar():
            if time.monotonic() > deadline:
                raise TimeoutError("jobs still pending")
            time.sleep(0.2)
            connection.rollback()
    engine.dispose()


def batch_flood(
    count: int,
    meter: CpuMeter,
    files: list[Path],
    batch_size: int = 1000,
    in_flight: int = 4,
    embedded: bool = False,
    profile_seconds: int = 0,
) -> dict:
    """On ``make run``'s processes (on MariaDB and RabbitMQ, or with ``embedded`` on its default: SQLite and
    the embedded broker): the web CPU of ``SINGLE_POSTS`` single POSTs, then the batch client on ``count``
    images; images/s and the CPU seconds of each process group during the flood."""
    database_url = None if embedded else create_database("imgsvc_bench")
    queue = f"inference-bench-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as instance:
            env = embedded_env(Path(instance)) if embedded else deployment_env(Path(instance), database_url, queue)
            with running_make_run(env, Path(instance)) as (url, _):
                import requests

                session = requests.Session()
                before = meter.snapshot()
                for index in range(SINGLE_POSTS):
                    assert post_image(session, url, files[index % len(files)]).status_code == 202
                single = meter.spent(before, meter.snapshot())
                drained(env["DATABASE_URL"])
                folder = Path(instance) / "folder"
                folder.mkdir()
                images = folder_of(count, files, folder)
                run_batches(url, images[:batch_size], batch_size, 1, None, None, 600)  # warm-up
                before, started = meter.snapshot(), time.perf_counter()
                records, _, errors = run_batches(
                    url, images, batch_size, in_flight, Path(instance) / "results.jsonl", None, 3600
                )
                elapsed = time.perf_counter() - started
                cpu = meter.spent(before, meter.snapshot())
                assert not errors, errors
                if profile_seconds:  # after the measurement, on a flood of its own

                    def flood_again(stop):  # record() hands its load a stop event; one whole flood is enough
                        run_batches(url, images, batch_size, in_flight, None, None, 600)

                    profile(meter, profile_seconds, flood_again)
                return {
                    "where": "embedded default (SQLite, embedded broker)" if embedded else "as shipped",
                    "images": count,
                    "done": sum(record["status"] == "done" for record in records),
                    "seconds": elapsed,
                    "rate": count / elapsed,
                    "cpu": cpu,
                    "single_post_web_ms": single.get("Gunicorn", 0.0) / SINGLE_POSTS * 1e3,
                    "single_post_nginx_ms": single.get("nginx", 0.0) / SINGLE_POSTS * 1e3,
                }
    finally:
        if database_url:
            drop_database(database_url)
            delete_queues([queue])


def profile(meter: CpuMeter, seconds: int, flood) -> None:
    """py-spy (``--gil``: Python on a core) on the worker's processes and Gunicorn's while ``flood`` runs:
    where their Python time goes, by the project's innermost function on the stack."""
    out = PROFILES / f"batch-flood-{time.strftime('%Y%m%d-%H%M%S')}"
    groups = {group: meter.pids(group) for group in ("worker", "Gunicorn")}
    paths = profile_web.record([pid for pids in groups.values() for pid in pids], seconds, out, "flood", flood)
    for group, pids in groups.items():
        mine = [path for path in paths if int(path.stem.rsplit("-", 1)[1]) in pids]
        total, _, packages, _ = profile_web.summarize(mine)
        print(f"\n{group}: {total} samples over {seconds} s of a batch flood (stacks in {profile_web.relative(out)})")
        print("    by package: " + ", ".join(f"{name} {count / total:.0%}" for name, count in packages[:8]))
        print("    by the project's innermost function:")
        for frame, count in innermost_project_frames(mine)[:12]:
            print(f"    {count / total:6.1%}  {frame}")


def innermost_project_frames(paths: list[Path]) -> list[tuple[str, int]]:
    """Samples by the deepest frame of the project's own code (else the stack's last frame)."""
    counts: Counter = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            own = [frame for frame in frames if PROJECT_FRAME.search(frame)]
            counts[own[-1] if own else f"(outside the project) {frames[-1]}"] += int(samples)
    return counts.most_common()


def report(flood: dict, best_limit: float, limit_cpu_ms: float) -> None:
    images = flood["images"]
    per_image = {group: flood["cpu"].get(group, 0.0) / images * 1e3 for group in (*SERVICE_GROUPS, LOAD_GENERATOR)}
    service_ms = sum(per_image[group] for group in SERVICE_GROUPS)
    print(
        f"\nbatch flood, {flood['where']} (make run's processes; python -m client batch, batches of 1000, 4 in "
        "flight): "
        f"{images} images ({flood['done']} done) in {flood['seconds']:.1f} s = {flood['rate']:.1f} images/s = "
        f"{flood['rate'] / best_limit:.2f} of the limit ({best_limit:.1f} images/s, same run)"
    )
    print("    CPU-ms per image: " + ", ".join(f"{group} {ms:.2f}" for group, ms in per_image.items() if ms >= 0.005))
    print(
        f"    service total {service_ms:.2f} CPU-ms per image; minus the model's own decode + preprocess + "
        f"inference ({limit_cpu_ms:.2f}, the limit's): {service_ms - limit_cpu_ms:.2f}"
    )
    busy_elsewhere = flood["cpu"].get(OTHER, 0.0) / (2 * flood["seconds"])
    if busy_elsewhere > 0.1:
        print(f"    !! other processes took about {busy_elsewhere:.0%} of the cores meanwhile")
    print(
        f"    web per image: batch {per_image['Gunicorn']:.3f} CPU-ms in Gunicorn (+ nginx {per_image['nginx']:.3f}), "
        f"single multipart POST {flood['single_post_web_ms']:.2f} (+ nginx {flood['single_post_nginx_ms']:.2f}): "
        f"{per_image['Gunicorn'] / flood['single_post_web_ms']:.3f} of it"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="images in the flood (default 10000, --quick 2000)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (a few minutes)")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="SECONDS", help="then py-spy the worker and Gunicorn (as shipped)"
    )
    args = parser.parse_args()
    count = args.images or (2000 if args.quick else 10000)
    from bench.throughput import image_files, measured_limit

    best_limit, limit_cpu_ms = measured_limit(args.quick)
    meter = CpuMeter({"MariaDB": listener_pid(MYSQL_SERVER_URL), "RabbitMQ": listener_pid(AMQP_URL)})
    files = image_files()
    shipped = batch_flood(count, meter, files, profile_seconds=args.profile)
    report(shipped, best_limit, limit_cpu_ms)
    embedded = batch_flood(count, meter, files, embedded=True)
    report(embedded, best_limit, limit_cpu_ms)
    print(f"\nembedded default / as shipped, batch flood: {embedded['rate'] / shipped['rate']:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()

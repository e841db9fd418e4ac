"""``python -m client batch DIR --url URL``: classify a folder of images with a running service."""

import argparse
import os
import sys
import time
from pathlib import Path

from client.batch import run_batch
from client.batches import run_batches
from client.report import Outcome, accuracy, exchange_lines, find_images, read_labels, summary_table

OUT_SUFFIXES = (".jsonl", ".csv")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    batch = commands.add_parser(
        "batch",
        help="classify every image in a folder and report what the service answers",
        description="Send every image directly in DIR to the batch API (POST /batches, several batches in "
        "flight), follow their progress, and write the results to --out. With DIR/labels.csv "
        "(filename,class_index,wnid,label) also print top-1/top-5 accuracy. --per-image posts each image "
        "on its own instead and prints each POST and GET answer.",
    )
    batch.add_argument("folder", metavar="DIR", type=Path, help="folder of images (not searched recursively)")
    batch.add_argument("--url", default="http://127.0.0.1:5000", help="service base URL (default: %(default)s)")
    batch.add_argument(
        "--out",
        type=Path,
        help="results file, .jsonl or .csv; images it already holds are skipped (run again to resume)",
    )
    batch.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        help="images per POST /batches, at most the service's "
        "BATCH_MAX_IMAGES (default: %(default)s; halved while the service answers 413)",
    )
    batch.add_argument("--in-flight", type=int, default=4, help="batches in flight at once (default: %(default)s)")
    batch.add_argument("--per-image", action="store_true", help="one POST and long-poll GETs per image instead")
    batch.add_argument(
        "--concurrency", type=int, default=4, help="with --per-image: images in flight at once (default: %(default)s)"
    )
    batch.add_argument(
        "--summary", action="store_true", help="print one table at the end instead of each POST and GET answer"
    )
    batch.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for one prediction (--per-image, default 180) or one batch (default 3600)",
    )
    batch.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY", ""),
        help="the service's API key, sent as 'Authorization: Bearer'; default: the API_KEY environment variable "
        "(which keeps it out of the shell history and of ps)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.in_flight < 1 or args.batch_size < 1:
        parser.error("--concurrency, --in-flight and --batch-size must be at least 1")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.out is not None and args.out.suffix not in OUT_SUFFIXES:
        parser.error("--out must end in .jsonl or .csv")
    if args.timeout is None:
        args.timeout = 180 if args.per_image else 3600
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    images = find_images(args.folder)
    if not images:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 2
    labels = read_labels(args.folder)
    started = time.perf_counter()
    errors: list[str] = []
    if args.per_image:
        outcomes, sent, note = _per_image(args, images), len(images), None
    else:
        records, skipped, errors = run_batches(
            args.url.rstrip("/"), images, args.batch_size, args.in_flight, args.out, args.api_key, args.timeout
        )
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        outcomes = [Outcome(name=r["name"], post_status=202, get_status=200, get_body=r) for r in records]
        sent, note = len(images) - skipped, f"{skipped} skipped as already in {args.out}" if skipped else None
    elapsed = time.perf_counter() - started

    if args.summary:
        print(summary_table(outcomes, labels))
    done = sum(o.status == "done" for o in outcomes)
    rate = f"{sent / elapsed:.2f} images/s" if sent else "nothing to send"
    detail = (
        f"concurrency {args.concurrency}; {sum(o.gets for o in outcomes) / max(len(outcomes), 1):.2f} GETs per image"
        if args.per_image
        else f"batches of {args.batch_size}, {args.in_flight} in flight" + (f"; {note}" if note else "")
    )
    print(f"{done}/{len(images)} classified in {elapsed:.1f} s: {rate} ({detail})")
    if args.out is not None and not args.per_image:
        print(f"results in {args.out}")
    if labels is not None:
        print(accuracy(outcomes, labels))
    if any(o.post_status == 401 for o in outcomes) or any("answered 401" in error for error in errors):
        given = "was not accepted" if args.api_key else "is needed"
        print(f"an API key {given}: pass --api-key KEY or set API_KEY", file=sys.stderr)
    return 0 if done == len(images) else 1


def _per_image(args, images):
    def show(outcome, progress):
        if not args.summary:
            for line in exchange_lines(outcome):
                progress.write(line)

    return run_batch(args.url.rstrip("/"), images, args.concurrency, args.timeout, show, args.api_key)


if __name__ == "__main__":
    sys.exit(main())

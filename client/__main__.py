"""``python -m client batch DIR --url URL``: classify a folder of images with a running service."""

import argparse
import os
import sys
import time
from pathlib import Path

from client.batch import run_batch
from client.report import accuracy, exchange_lines, find_images, read_labels, summary_table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    batch = commands.add_parser(
        "batch",
        help="post every image in a folder and print what the service answers",
        description="Post every image directly in DIR, wait for each prediction, and print the answers. "
        "With DIR/labels.csv (filename,class_index,wnid,label) also print top-1/top-5 accuracy.",
    )
    batch.add_argument("folder", metavar="DIR", type=Path, help="folder of images (not searched recursively)")
    batch.add_argument("--url", default="http://127.0.0.1:5000", help="service base URL (default: %(default)s)")
    batch.add_argument("--concurrency", type=int, default=4, help="images in flight at once (default: %(default)s)")
    batch.add_argument(
        "--summary", action="store_true", help="print one table at the end instead of each POST and GET answer"
    )
    batch.add_argument(
        "--timeout", type=float, default=180, help="seconds to wait for one prediction (default: %(default)s)"
    )
    batch.add_argument(
        "--api-key",
        default=os.environ.get("API_KEY", ""),
        help="the service's API key, sent as 'Authorization: Bearer'; default: the API_KEY environment variable "
        "(which keeps it out of the shell history and of ps)",
    )
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    images = find_images(args.folder)
    if not images:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 2
    labels = read_labels(args.folder)

    def show(outcome, progress):
        if not args.summary:
            for line in exchange_lines(outcome):
                progress.write(line)

    started = time.perf_counter()
    outcomes = run_batch(args.url.rstrip("/"), images, args.concurrency, args.timeout, show, args.api_key)
    elapsed = time.perf_counter() - started

    if args.summary:
        print(summary_table(outcomes, labels))
    done = sum(o.status == "done" for o in outcomes)
    gets = sum(o.gets for o in outcomes)
    print(
        f"{done}/{len(outcomes)} classified in {elapsed:.1f} s: {len(outcomes) / elapsed:.2f} images/s "
        f"(concurrency {args.concurrency}; {gets / max(len(outcomes), 1):.2f} GETs per image)"
    )
    if labels is not None:
        print(accuracy(outcomes, labels))
    if any(o.post_status == 401 for o in outcomes):
        given = "was not accepted" if args.api_key else "is needed"
        print(f"an API key {given}: pass --api-key KEY or set API_KEY", file=sys.stderr)
    return 0 if done == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the batch client reads from a folder and prints about the answers: no network here."""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
LABELS_FILE = "labels.csv"


@dataclass
class Outcome:
    """One image's two exchanges with the API: the POST and the last GET."""

    name: str
    post_status: int | None = None
    post_body: object = None
    get_status: int | None = None
    get_body: object = None
    seconds: float = 0.0
    gets: int = 0  # GETs it took to learn the result (each one a long poll)
    error: str | None = None  # a transport error or a timeout, in words

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        if isinstance(self.get_body, dict):
            return self.get_body.get("status", "error")
        return "refused" if self.post_status != 202 else "error"

    @property
    def top5(self) -> list[str]:
        return [entry["label"] for entry in self.get_body.get("top5", [])] if self.status == "done" else []

    @property
    def prediction(self) -> str | None:
        return self.get_body.get("prediction") if self.status == "done" else None


@dataclass(frozen=True)
class Accuracy:
    labelled: int
    top1: int
    top5: int

    def __str__(self) -> str:
        def share(hits):
            return f"{hits}/{self.labelled} ({100 * hits / self.labelled:.1f}%)" if self.labelled else "n/a"

        return f"top-1 accuracy: {share(self.top1)}   top-5 accuracy: {share(self.top5)}"


def find_images(folder: Path) -> list[Path]:
    """The images directly in ``folder`` (not its subfolders), by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_labels(folder: Path) -> dict[str, str] | None:
    """filename → expected class name from ``labels.csv`` (filename,class_index,wnid,label), if present."""
    path = folder / LABELS_FILE
    if not path.exists():
        return None
    with path.open(newline="") as labels:
        return {row["filename"]: row["label"] for row in csv.DictReader(labels)}


def accuracy(outcomes: list[Outcome], labels: dict[str, str]) -> Accuracy:
    """Over the labelled images; one that got no prediction counts as a miss."""
    labelled = [o for o in outcomes if o.name in labels]
    return Accuracy(
        labelled=len(labelled),
        top1=sum(o.prediction == labels[o.name] for o in labelled),
        top5=sum(labels[o.name] in o.top5 for o in labelled),
    )


def _compact(body) -> str:
    return json.dumps(body, separators=(",", ":")) if isinstance(body, (dict, list)) else str(body)


def exchange_lines(outcome: Outcome) -> list[str]:
    """The POST and GET answers of one image, as the seed's batch test printed them."""
    lines = [f"{outcome.name}: POST {outcome.post_status} {_compact(outcome.post_body)}"]
    if outcome.get_status is not None:
        lines.append(f"{outcome.name}: GET {outcome.get_status} {_compact(outcome.get_body)}")
    if outcome.error:
        lines.append(f"{outcome.name}: {outcome.error}")
    return lines


def summary_table(outcomes: list[Outcome], labels: dict[str, str] | None) -> str:
    headers = ["image", "status", "result", "confidence", "seconds"]
    if labels is not None:
        headers += ["expected", "top-1", "top-5"]
    rows = []
    for o in outcomes:
        confidence = f"{o.get_body['confidence']:.3f}" if o.status == "done" else ""
        detail = o.prediction or o.error or _problem_detail(o)
        row = [o.name, o.status, detail, confidence, f"{o.seconds:.2f}"]
        if labels is not None:
            expected = labels.get(o.name)
            row += [expected or "", _mark(expected, o.prediction == expected), _mark(expected, expected in o.top5)]
        rows.append(row)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
        for line in [headers, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


def _problem_detail(outcome: Outcome) -> str:
    for body in (outcome.get_body, outcome.post_body):
        if isinstance(body, dict) and (body.get("error") or body.get("detail")):
            return body.get("error") or body["detail"]
    return ""


def _mark(expected: str | None, hit: bool) -> str:
    return "" if expected is None else ("yes" if hit else "no")

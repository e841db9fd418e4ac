"""What worker hosts recorded, from their logs and the database, in the multi-host tests."""

import json
from collections import Counter

from sqlalchemy import create_engine, text

from tests.support.polling import until


def recorded(worker) -> Counter:
    """uuid → how many "recorded" lines this worker logged for it (one per row its UPDATE changed)."""
    counts = Counter()
    for line in worker.process.output().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("uuid") and entry["message"].startswith(f"prediction {entry['uuid']} recorded: "):
                counts[entry["uuid"]] += 1
    return counts


def query(database_url: str, sql: str, **params):
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text(sql), params).all()
    engine.dispose()
    return rows


def recorded_per_host(deployment) -> dict[str, Counter]:
    return {name: recorded(worker) for name, worker in deployment.workers.items()}


def assert_recorded_exactly_once(deployment, uuids) -> dict[str, Counter]:
    """Across worker hosts, each job has exactly one "recorded" line: nobody wrote a row twice.

    A worker cut off while its commit was on the wire logs the line once the answer reaches it,
    so this waits (with a deadline) for every job to have a line, then checks there is one."""

    def every_job_has_a_line():
        per_host = recorded_per_host(deployment)
        union = sum(per_host.values(), Counter())
        return (per_host, union) if all(union[job] for job in uuids) else None

    per_host, union = until(every_job_has_a_line, "a recorded line for every job", 60, interval=0.2)
    assert {job: union[job] for job in uuids if union[job] != 1} == {}
    return per_host

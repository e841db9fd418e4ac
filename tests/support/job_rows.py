"""Reading jobs' rows straight from the database, and waiting for every job to end."""

from sqlalchemy import create_engine, text

from tests.support.polling import until

DRAIN_TIMEOUT = 240


def statuses(database_url: str, uuids) -> dict[str, str]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT uuid, status FROM predictions")).all()
    engine.dispose()
    wanted = set(uuids)
    return {row.uuid: row.status for row in rows if row.uuid in wanted}


def wait_until_finished(database_url: str, uuids, timeout: float = DRAIN_TIMEOUT) -> dict[str, str]:
    found: dict[str, str] = {}

    def finished():
        found.clear()
        found.update(statuses(database_url, uuids))
        return len(found) == len(set(uuids)) and "pending" not in found.values()

    def progress():
        missing = len(set(uuids)) - len(found)
        pending = sum(status == "pending" for status in found.values())
        return f"every job ended ({pending} pending, {missing} without a row)"

    until(finished, progress, timeout, interval=0.5)
    return found

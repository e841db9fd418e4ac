"""The waiter: answers ``GET /predictions/<uuid>?wait=N`` the moment the job ends, or after N seconds,
and ``GET /batches/<id>?wait=N`` the moment the batch completes.

A small asyncio server beside Gunicorn (Procfile ``waiter:``; nginx sends it every request with a
``wait`` argument, see ``deploy/nginx/api.conf.template``). A waiting client costs a future here, not
a thread or a database connection: the row is read in a short query (in a worker thread, the
connection back in the pool at once), then the request waits on a future keyed by its uuid.

Futures are resolved from two sources, each followed by one query for the jobs concerned:

- Completion events (``jobs.events``): on RabbitMQ every waiter, on any host, binds an
  exclusive auto-delete queue to the fanout exchange the workers announce ended jobs on.
- Polling, as a fallback: every 0.2 s while there is no event subscription (the embedded
  filesystem broker has no fanout, or RabbitMQ is unreachable), and every 5 s behind it, so an
  event lost in a broker hiccup delays a waiter by 5 s at most.

A batch is waited on the same way: events name the batches they completed, polling reads the
batches waited on. Answers are the plain GET's: 200 done/failed, 202 pending with Retry-After, 404,
401 with API keys (``webapp.auth``), and problem documents, built by the same code
(``webapp.predictions.answer``). Rate limits are the web's, not applied here.
"""

import argparse
import asyncio
import json
import logging

import aio_pika
import orjson
from aiohttp import web
from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError

from config.logging import configure_logging
from config.settings import Settings, load_settings
from jobs.app import engine_options
from jobs.batches import read_batch
from jobs.broker import events_exchange, is_rabbitmq
from jobs.records import PENDING, Prediction, prediction_json
from webapp.auth import api_key_refusal, key_scope
from webapp.errors import PROBLEM_JSON, ApiError, problem_document
from webapp.predictions.answer import checked_uuid, no_such_prediction, prediction_answer, unavailable
from webapp.predictions.notify import is_uuid4, parse_wait

logger = logging.getLogger(__name__)

POLL_WITHOUT_EVENTS = 0.2  # seconds between database checks when no events arrive
POLL_BEHIND_EVENTS = 5  # seconds between checks that catch a lost event
RECONNECT_PAUSE = 2  # seconds before subscribing again after the broker went away
READ_CHUNK = 500  # uuids per query


class Waiter:
    """The jobs being waited on, and how their futures get resolved."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = create_engine(
            settings.DATABASE_URL, pool_size=4, max_overflow=4, **engine_options(settings.DATABASE_URL)
        )
        self.waiting: dict[str, set[asyncio.Future]] = {}
        self.batches_waiting: dict[str, set[asyncio.Future]] = {}
        self.subscribed = False
        self._tasks: list[asyncio.Task] = []

    # --- rows --------------------------------------------------------------------------------
    def _read_now(self, uuids: list[str]) -> dict[str, dict]:
        """Core reads, no ORM objects: a waiting GET costs one short query on a pooled connection."""
        table, bodies = Prediction.__table__, dict[str, dict]()
        with self.engine.connect() as connection:
            for start in range(0, len(uuids), READ_CHUNK):
                query = select(table).where(table.c.uuid.in_(uuids[start : start + READ_CHUNK]))
                bodies.update((row.uuid, prediction_json(row)) for row in connection.execute(query))
        return bodies

    async def read(self, uuids: list[str]) -> dict[str, dict]:
        """The GET JSON of each existing job, read in a thread so the event loop never blocks."""
        return await asyncio.to_thread(self._read_now, uuids)

    def _read_batch_now(self, batch_id: str, owner: str) -> dict | None:
        with self.engine.connect() as connection:
            return read_batch(connection, batch_id, owner)[0]

    async def read_batch(self, batch_id: str, owner: str) -> dict | None:
        return await asyncio.to_thread(self._read_batch_now, batch_id, owner)

    def _ended_batches_now(self, batch_ids: list[str]) -> set[str]:
        with self.engine.connect() as connection:
            return {batch_id for batch_id in batch_ids if _completed(connection, batch_id)}

    # --- futures -----------------------------------------------------------------------------
    def subscribe(self, prediction_uuid: str, waiting: dict | None = None) -> asyncio.Future:
        """A future resolved when the job (or, in ``batches_waiting``, the batch) ends."""
        waiting = self.waiting if waiting is None else waiting
        future = asyncio.get_running_loop().create_future()
        waiting.setdefault(prediction_uuid, set()).add(future)
        return future

    def unsubscribe(self, prediction_uuid: str, future: asyncio.Future, waiting: dict | None = None) -> None:
        waiting = self.waiting if waiting is None else waiting
        futures = waiting.get(prediction_uuid, set())
        futures.discard(future)
        if not futures:
            waiting.pop(prediction_uuid, None)

    async def resolve_batches(self, batch_ids) -> None:
        """Wake the waiters of each of these batches that has completed."""
        wanted = [batch_id for batch_id in batch_ids if batch_id in self.batches_waiting]
        if not wanted:
            return
        try:
            ended = await asyncio.to_thread(self._ended_batches_now, wanted)
        except SQLAlchemyError:
            logger.warning("could not read %d waited-on batches", len(wanted), exc_info=True)
            return
        for batch_id in ended:
            for future in self.batches_waiting.get(batch_id, ()):
                if not future.done():
                    future.set_result(True)

    async def resolve(self, uuids) -> None:
        """Read the jobs that someone waits on, and hand each ended one to its waiters."""
        wanted = [prediction_uuid for prediction_uuid in uuids if prediction_uuid in self.waiting]
        if not wanted:
            return
        try:
            bodies = await self.read(wanted)
        except SQLAlchemyError:
            logger.warning("could not read %d waited-on jobs", len(wanted), exc_info=True)
            return
        for prediction_uuid, body in bodies.items():
            if body["status"] != PENDING:
                for future in self.waiting.get(prediction_uuid, ()):
                    if not future.done():
                        future.set_result(body)

    # --- sources -----------------------------------------------------------------------------
    async def poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_BEHIND_EVENTS if self.subscribed else POLL_WITHOUT_EVENTS)
            try:
                await self.resolve(list(self.waiting))
                await self.resolve_batches(list(self.batches_waiting))
            except Exception:  # the loop must outlive any one failure
                logger.exception("checking the waited-on jobs failed")

    async def listen(self) -> None:
        """Consume completion events from RabbitMQ, subscribing again whenever the connection drops."""
        url = self.settings.CELERY_BROKER_URL.replace("pyamqp://", "amqp://", 1)
        exchange_name = events_exchange(self.settings.CELERY_QUEUE).name
        while True:
            try:
                connection = await aio_pika.connect(url, timeout=5)
                async with connection:
                    channel = await connection.channel()
                    exchange = await channel.declare_exchange(
                        exchange_name, aio_pika.ExchangeType.FANOUT, durable=False
                    )
                    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
                    await queue.bind(exchange)
                    self.subscribed = True
                    logger.info("listening for completion events on %s", exchange_name)
                    await self.resolve(list(self.waiting))  # what ended while nobody listened
                    await self.resolve_batches(list(self.batches_waiting))
                    async with queue.iterator(no_ack=True) as messages:
                        async for message in messages:
                            self.on_event(message.body)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("no completion events from %s; polling meanwhile", exchange_name, exc_info=True)
            finally:
                self.subscribed = False
            await asyncio.sleep(RECONNECT_PAUSE)

    def on_event(self, body: bytes) -> None:
        try:
            event = json.loads(body)
            statuses, batches = event["jobs"], list(event.get("batches", ()))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed completion event")
            return
        ended = [prediction_uuid for prediction_uuid in statuses if prediction_uuid in self.waiting]
        if ended:
            self._tasks.append(asyncio.create_task(self.resolve(ended)))
        completed = [batch_id for batch_id in batches if batch_id in self.batches_waiting]
        if completed:
            self._tasks.append(asyncio.create_task(self.resolve_batches(completed)))
        self._tasks = [task for task in self._tasks if not task.done()]

    async def start(self, _app=None) -> None:
        self._tasks.append(asyncio.create_task(self.poll()))
        if is_rabbitmq(self.settings.CELERY_BROKER_URL):
            self._tasks.append(asyncio.create_task(self.listen()))

    async def stop(self, _app=None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.engine.dispose()

    # --- the route ---------------------------------------------------------------------------
    async def get_prediction(self, request: web.Request) -> web.Response:
        return await self._guarded(self._answer, request)

    async def get_batch(self, request: web.Request) -> web.Response:
        return await self._guarded(self._answer_batch, request)

    async def _guarded(self, answer, request: web.Request) -> web.Response:
        try:
            return await answer(request)
        except ApiError as error:
            return problem(error)
        except SQLAlchemyError:
            logger.warning("database unavailable", exc_info=True)
            return problem(unavailable("database"))

    async def _answer(self, request: web.Request) -> web.Response:
        refusal = api_key_refusal(self.settings.API_KEYS, request.headers.get("Authorization", ""))
        if refusal is not None:
            raise refusal
        wait = parse_wait(request.query.get("wait")) or 0
        prediction_uuid = checked_uuid(request.match_info["uuid"])
        future = self.subscribe(prediction_uuid)  # before the read, so an end in between is not missed
        try:
            body = (await self.read([prediction_uuid])).get(prediction_uuid)
            if body is None:
                raise no_such_prediction(prediction_uuid)
            if body["status"] == PENDING and wait:
                try:
                    body = await asyncio.wait_for(future, wait)
                except TimeoutError:
                    body = (await self.read([prediction_uuid])).get(prediction_uuid, body)
        finally:
            self.unsubscribe(prediction_uuid, future)
        status, body, headers = prediction_answer(prediction_uuid, body)
        return json_response(body, status, headers)

    async def _answer_batch(self, request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        refusal = api_key_refusal(self.settings.API_KEYS, authorization)
        if refusal is not None:
            raise refusal
        wait = parse_wait(request.query.get("wait")) or 0
        batch_id = request.match_info["batch_id"]
        if not is_uuid4(batch_id):
            raise ApiError(404, "Not Found", f"{batch_id[:64]!r} is not a batch id (a UUID4).")
        batch_id, owner = batch_id.lower(), key_scope(self.settings.API_KEYS, authorization)
        future = self.subscribe(batch_id, self.batches_waiting)  # before the read, as for a job
        try:
            body = await self.read_batch(batch_id, owner)
            if body is None:
                raise ApiError(404, "Not Found", f"No batch has id {batch_id}.")
            if body["completed_at"] is None and wait:
                try:
                    await asyncio.wait_for(future, wait)
                except TimeoutError:
                    pass
                body = await self.read_batch(batch_id, owner) or body
        finally:
            self.unsubscribe(batch_id, future, self.batches_waiting)
        return json_response(body)


def _completed(connection, batch_id: str) -> bool:
    """Whether the batch has ended (or is gone). The waiter only reads: claiming an end is left to
    those who can announce it (worker, web)."""
    batch = read_batch(connection, batch_id, owner=None)[0]
    return batch is None or batch["completed_at"] is not None


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers, content_type="application/json")


def problem(error: ApiError) -> web.Response:
    body = problem_document(error.status, error.title, error.detail)
    return web.Response(text=json.dumps(body), status=error.status, headers=error.headers, content_type=PROBLEM_JSON)


def make_app(settings: Settings) -> web.Application:
    waiter = Waiter(settings)
    app = web.Application()
    app.router.add_get("/predictions/{uuid}", waiter.get_prediction)
    app.router.add_get("/predictions/{uuid}/", waiter.get_prediction)
    app.router.add_get("/batches/{batch_id}", waiter.get_batch)
    app.router.add_get("/batches/{batch_id}/", waiter.get_batch)
    app.on_startup.append(waiter.start)
    app.on_cleanup.append(waiter.stop)
    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = load_settings()
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=settings.WAITER_PORT, help="port (default WAITER_PORT)")
    args = parser.parse_args(argv)
    configure_logging(settings.LOG_LEVEL)
    logger.info("waiter listening on %s:%d", args.host, args.port)
    web.run_app(make_app(settings), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()

"""The worker's entry point: ``celery -A tasks.worker:celery_app worker`` (also beat and flower).

Like ``make_celery.py`` in Flask's ``examples/celery``: the shared base app
(settings, database, image store, Celery) plus the worker's own tasks, listed in
Celery's ``include``, and its start-up and shutdown steps (``tasks/lifecycle.py``).
None of the web's routes.
"""

from config.settings import load_settings
from jobs.app import create_base_app
from tasks.lifecycle import connect_worker

# The modules whose tasks this worker runs; Celery imports them when the worker starts.
TASK_MODULES = ("tasks.classify", "tasks.retention", "tasks.sweeper")

flask_app = create_base_app(__name__, load_settings())
celery_app = flask_app.extensions["celery"]
celery_app.conf.include = TASK_MODULES
connect_worker(flask_app)

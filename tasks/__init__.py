"""The worker: takes jobs from the queue in batches, classifies them, records the outcomes.

Started with ``celery -A tasks.worker:celery_app worker`` (see ``tasks/worker.py``).
It shares ``jobs`` with the web and never imports ``webapp``.
"""

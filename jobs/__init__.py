"""What the web and the worker share: a job's record, its image, and its message.

The flow: the web (``webapp``) validates an upload and calls ``jobs.submit``
(store image → record row → publish by task name); the worker (``tasks``)
classifies batches and records outcomes with ``jobs.records``. ``webapp`` and
``tasks`` both import this package and never each other.
"""

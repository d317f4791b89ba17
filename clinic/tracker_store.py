"""Rasa's SQL tracker store, with connections checked before use.

Rasa 3.6's ``SQLTrackerStore`` keeps a pool of connections (on PostgreSQL 50, plus up to 100
more: ``SQL_POOL_SIZE`` and ``SQL_MAX_OVERFLOW``) and never tests them. After the database
restarts, the next read on each pooled connection fails, and Rasa then answers that message
from an empty in-memory tracker (its fail-safe store): the visitor's conversation is forgotten
for that turn. With ``pool_pre_ping`` a dead connection is noticed and replaced before it is
used, so the first message after a restart is answered from the real conversation.

endpoints.yml (see endpoints.scale.yml)::

    tracker_store:
      type: clinic.tracker_store.SQLTrackerStore
      url: ${DATABASE_URL}          # postgresql://user:password@host:port/db
"""

from typing import Any

import sqlalchemy as sa
from rasa.core import tracker_store as rasa_tracker_store


class SQLTrackerStore(rasa_tracker_store.SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # connects (waiting for the database) and makes the table
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, **rasa_tracker_store.create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

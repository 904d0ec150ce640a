"""A fake MongoDB server for the tests: the real wire protocol, so the real PyMongo
``AsyncMongoClient`` (and ``gigvora serve`` in another process) talks to it over a socket.

It poses as a writable primary of a one-member replica set (``setName``, wire version 21 =
MongoDB 7.0, logical sessions), so drivers run transactions and retryable writes against it.
Query matching, update operators, sort, projection and aggregation are mongomock's; indexes,
duplicate-key errors, sessions, transactions, write conflicts, retryable writes,
``killSessions`` and mongod's ``failCommand`` fail point (failpoints.py) are modelled here after
MongoDB's contract (engine.py, views.py, commands.py). Every reply carries ``$clusterTime`` and
``operationTime``. Run it alone with ``python -m tests.fakes.mongo --port 27017``.

Where it knowingly differs from MongoDB (docs/deploy.md lists these too):

- Memory only, one node: no oplog, no replication, no elections or failover, no journal;
  write concerns and read concern levels are accepted and ignored (every acknowledged write is
  "majority" and every read sees the latest committed state, or the transaction's snapshot).
- No authentication, TLS, compression, or streaming (awaitable) ``hello``: drivers poll.
- Unique indexes are enforced (E11000 with ``keyPattern``/``keyValue``, ``partialFilterExpression``
  and ``sparse`` honoured); non-unique indexes are recorded and listed but every query is a scan,
  and unique indexes on array fields do not index each element (multikey).
- A transaction's snapshot is taken at its first statement; a collection created by another
  client after that is seen as it is now. Conflicts are per document and per unique key
  (first writer wins, the other gets WriteConflict with ``TransientTransactionError``), as in
  WiredTiger; writes outside a transaction wait for the transaction holding their document.
- Query and update semantics are mongomock's; update pipelines, ``$where``, text and geo
  queries, change streams, collation and time-series collections are not supported.
"""

from tests.fakes.mongo.server import FakeMongo, FakeMongoThread

__all__ = ["FakeMongo", "FakeMongoThread"]

"""Document storage: texts with their embeddings, in SQLite under DATA_DIR or in PostgreSQL.

Vectors are stored as little-endian float32 bytes and ranked in Python by cosine (they are
L2-normalised, so a dot product): plenty at course scale, and no database extension needed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import StorageError

SQLITE_FILENAME = "documents.sqlite3"
SCHEMA = ("CREATE TABLE IF NOT EXISTS documents ("
          "id TEXT PRIMARY KEY, text TEXT NOT NULL, embedding {blob} NOT NULL)")


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass(frozen=True)
class ScoredDocument:
    id: str
    text: str
    score: float


class DocumentStore(Protocol):
    kind: str

    def put(self, doc_id: str, text: str, embedding: np.ndarray) -> None:
        """Store a document; an existing id is replaced."""

    def get(self, doc_id: str) -> Document | None: ...

    def search(self, query: np.ndarray, k: int) -> list[ScoredDocument]: ...

    def close(self) -> None: ...


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def rank(rows: Iterable[tuple[str, str, bytes]], query: np.ndarray, k: int) -> list[ScoredDocument]:
    rows = list(rows)
    if not rows:
        return []
    matrix = np.stack([np.frombuffer(bytes(blob), dtype="<f4") for _, _, blob in rows])
    scores = matrix @ np.asarray(query, dtype=np.float32)
    best = np.argsort(-scores, kind="stable")[:k]
    return [ScoredDocument(rows[i][0], rows[i][1], float(scores[i])) for i in best]


class _SqlStore:
    """The queries both databases share; subclasses give the connection, `_do` and the
    driver's parameter marker."""

    PARAM = "?"

    def _do(self, sql: str, params: tuple = ()) -> list[tuple]:
        raise NotImplementedError

    def put(self, doc_id: str, text: str, embedding: np.ndarray) -> None:
        p = self.PARAM
        self._do(f"INSERT INTO documents (id, text, embedding) VALUES ({p}, {p}, {p}) ON CONFLICT (id) DO UPDATE "
                 "SET text = excluded.text, embedding = excluded.embedding", (doc_id, text, to_bytes(embedding)))

    def get(self, doc_id: str) -> Document | None:
        rows = self._do(f"SELECT id, text FROM documents WHERE id = {self.PARAM}", (doc_id,))
        return Document(*rows[0]) if rows else None

    def search(self, query: np.ndarray, k: int) -> list[ScoredDocument]:
        return rank(self._do("SELECT id, text, embedding FROM documents"), query, k)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SqliteStore(_SqlStore):
    kind = "sqlite"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / SQLITE_FILENAME
        self._lock = threading.Lock()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(SCHEMA.format(blob="BLOB"))
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open {self.path} ({exc}): DATA_DIR must be a writable directory "
                               "for the service's user, e.g. a named volume mounted at /data") from None

    def _do(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"SQLite error on {self.path}: {exc}") from None



class PostgresStore(_SqlStore):
    kind = "postgresql"
    PARAM = "%s"

    def __init__(self, url: str, password: str | None = None, connect_timeout: int = 5) -> None:
        self._url = url
        self._extra = {"connect_timeout": connect_timeout, "autocommit": True}
        if password:
            self._extra["password"] = password
        self._lock = threading.Lock()
        self._conn = self._connect()
        self._do(SCHEMA.format(blob="BYTEA"))

    def _connect(self):
        import psycopg

        try:
            return psycopg.connect(self._url, **self._extra)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {self._where()}: {first_line(exc)}") from None

    def _where(self) -> str:
        return self._url.split("@")[-1]  # never the credentials

    def _do(self, sql: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with self._lock:
            for attempt in (1, 2):  # a dropped connection (database restart) is re-opened once
                try:
                    if self._conn.closed:
                        self._conn = self._connect()
                    with self._conn.cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchall() if cur.description else []
                except psycopg.OperationalError as exc:
                    self._conn.close()
                    if attempt == 2:
                        raise StorageError(f"PostgreSQL at {self._where()} failed: {first_line(exc)}") from None
                except psycopg.Error as exc:
                    raise StorageError(f"PostgreSQL error: {first_line(exc)}") from None
        return []



def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class StoreHolder:
    """Opens the store when first needed and again after a failure, so the service stays up
    (and healthy for embeddings) while its database is still starting or a volume is missing."""

    def __init__(self, opener: Callable[[], DocumentStore], kind: str) -> None:
        self._opener = opener
        self.kind = kind
        self._store: DocumentStore | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.error: str | None = None

    def get(self) -> DocumentStore:
        with self._lock:
            if self._store is None:
                try:
                    self._store = self._opener()
                    self.error = None
                except StorageError as exc:
                    self.error = exc.message
                    raise
            return self._store

    def open_with_retry(self, timeout: float) -> None:
        """At startup: a database started alongside the service may need a few seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get()
                return
            except StorageError:
                if time.monotonic() >= deadline or self._closing.wait(1.0):  # retry every second
                    return  # reported by /info and on each /documents call until it works

    @property
    def status(self) -> str:
        return "ok" if self._store is not None else f"unavailable: {self.error or 'not opened yet'}"

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

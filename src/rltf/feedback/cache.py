"""A SQLite cache of judge replies, keyed by the client and the exact request."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path


class ReplyCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Several training processes may share one cache file: write-ahead logging lets readers and
        # one writer work at once, and a writer waits up to 60 s for another's lock instead of failing.
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=60.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
            self._db.commit()

    @staticmethod
    def key(client_name: str, messages) -> str:
        return hashlib.sha256(json.dumps([client_name, messages], sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, reply: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply))
            self._db.commit()

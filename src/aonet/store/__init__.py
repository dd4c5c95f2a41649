"""The log: one interface (`Store`), SQLite as the embedded default."""
from .base import (AssignmentRecord, ItemPage, ItemRecord, LoopBridge, ProcessRecord, ScheduleWrite, Store,
                   StoreConflict, StoreError, decode_cursor, encode_cursor)
from .sqlite import SQLiteStore, open_store

__all__ = ["AssignmentRecord", "ItemPage", "ItemRecord", "LoopBridge", "ProcessRecord", "SQLiteStore",
           "ScheduleWrite", "Store", "StoreConflict", "StoreError", "decode_cursor", "encode_cursor", "open_store"]

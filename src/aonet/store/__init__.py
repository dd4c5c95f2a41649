"""The log: one interface (`Store`), SQLite as the embedded default."""
from .base import (AssignmentRecord, DuplicateDedup, Head, ItemPage, ItemRecord, LoopBridge, NoProcess, ProcessRecord,
                   ScheduleRequest, ScheduleWrite, Store, StoreConflict, StoreError, decode_cursor, encode_cursor)
from .sqlite import SQLiteStore, open_store

__all__ = ["AssignmentRecord", "DuplicateDedup", "Head", "ItemPage", "ItemRecord", "LoopBridge", "NoProcess",
           "ProcessRecord", "SQLiteStore", "ScheduleRequest", "ScheduleWrite", "Store", "StoreConflict", "StoreError",
           "decode_cursor", "encode_cursor", "open_store"]

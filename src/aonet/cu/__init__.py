"""The Compute Unit: lazy evaluation of AO processes from their SU schedule (see docs/cu.md)."""
from .app import create_cu_app
from .core import ModuleMeta, ProcessMeta, UnitLimits
from .errors import BadRequest, ChainError, CUError, LimitExceeded, NotFound, Unsupported, UpstreamError
from .service import ComputeUnit
from .signing import ResultSignatureError, verify_result_signature
from .sources import (ClockBlockSource, GatewayModuleSource, ModuleSource, SourceItem, StaticModuleSource,
                      StoreModuleSource, SUClient)
from .verify import VerifyReport, verify_process

__all__ = ["BadRequest", "CUError", "ChainError", "ClockBlockSource", "ComputeUnit", "GatewayModuleSource",
           "LimitExceeded", "ModuleMeta", "ModuleSource", "NotFound", "ProcessMeta", "ResultSignatureError",
           "SUClient", "SourceItem", "StaticModuleSource", "StoreModuleSource", "UnitLimits", "Unsupported",
           "UpstreamError", "VerifyReport", "create_cu_app", "verify_process", "verify_result_signature"]

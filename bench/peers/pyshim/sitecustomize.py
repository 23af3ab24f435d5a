"""Loaded at interpreter start when bench/peers/pyshim is on PYTHONPATH (shadows Debian's sitecustomize, which only
installs the apport hook).

Debian's torch 1.13 predates torch.float8_e4m3fn / float8_e5m2 (2.1) and torch.uint16/32/64 (2.3), which the
llama.cpp / ik_llama.cpp converters name at import time (dtype maps). Give them distinct *placeholder* dtypes so
those dict literals build without colliding with real entries. They are not usable dtypes: a checkpoint that really
holds FP8 or U16/U32/U64 tensors cannot be converted with this shim (the bench model is all BF16).
"""
try:
    import torch as _torch
except Exception:  # torch missing: nothing to patch
    _torch = None

if _torch is not None:
    _PLACEHOLDERS = {
        "float8_e4m3fn": "quint8",
        "float8_e5m2": "qint8",
        "uint16": "qint32",
        "uint32": "quint4x2",
        "uint64": "quint2x4",
    }
    for _name, _stand_in in _PLACEHOLDERS.items():
        if not hasattr(_torch, _name) and hasattr(_torch, _stand_in):
            setattr(_torch, _name, getattr(_torch, _stand_in))

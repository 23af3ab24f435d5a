"""Stand-in for the `safetensors` package (not installable here): safe_open over the JSON header plus a numpy
memmap of the file. Only framework="pt" on CPU. Tensors are zero-copy views of a copy-on-write mapping."""
import json
import os
import struct

import numpy as np

__all__ = ["safe_open"]

# safetensors dtype string -> (numpy storage dtype, torch dtype name or None if numpy maps directly)
_NP = {
    "F64": (np.float64, None), "F32": (np.float32, None), "F16": (np.float16, None),
    "BF16": (np.int16, "bfloat16"),
    "I64": (np.int64, None), "I32": (np.int32, None), "I16": (np.int16, None), "I8": (np.int8, None),
    "U8": (np.uint8, None), "BOOL": (np.bool_, None),
    "F8_E4M3": (np.uint8, "float8_e4m3fn"), "F8_E5M2": (np.uint8, "float8_e5m2"),
}


def _to_torch(arr, torch_name):
    import torch
    t = torch.from_numpy(arr)
    if torch_name is not None:
        dt = getattr(torch, torch_name, None)
        if dt is None or (torch_name.startswith("float8") and not str(dt).startswith("torch.float8")):
            raise TypeError(f"this torch has no {torch_name}; the pyshim cannot load such tensors")
        t = t.view(dt)
    return t


class _Slice:
    def __init__(self, f, name):
        self._f, self._name = f, name
        self._meta = f._header[name]

    def get_dtype(self):
        return self._meta["dtype"]

    def get_shape(self):
        return list(self._meta["shape"])

    def __getitem__(self, idx):
        arr = self._f._array(self._name)
        sub = arr[idx]
        if not isinstance(sub, np.ndarray):
            sub = np.asarray(sub)
        return _to_torch(sub, _NP[self._meta["dtype"]][1])


class safe_open:  # noqa: N801 (same name as the real API)
    def __init__(self, filename, framework="pt", device="cpu"):
        if framework not in ("pt", "torch", "numpy", "np"):
            raise ValueError(f"pyshim safetensors: framework {framework!r} not supported")
        if str(device) != "cpu":
            raise ValueError("pyshim safetensors: only device='cpu'")
        self._framework = framework
        self._path = os.fspath(filename)
        with open(self._path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        self._meta = header.pop("__metadata__", None) or {}
        self._header = header
        self._data_start = 8 + n
        self._mm = None

    def _map(self):
        if self._mm is None:
            size = os.path.getsize(self._path) - self._data_start
            self._mm = np.memmap(self._path, dtype=np.uint8, mode="c", offset=self._data_start, shape=(size,))
        return self._mm

    def _array(self, name):
        m = self._header[name]
        np_dt = _NP[m["dtype"]][0]
        a, b = m["data_offsets"]
        raw = self._map()[a:b]
        return raw.view(np_dt).reshape(tuple(m["shape"]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._mm = None
        return False

    def keys(self):
        return sorted(self._header.keys())  # the real library lists names sorted

    def metadata(self):
        return dict(self._meta)

    def get_slice(self, name):
        return _Slice(self, name)

    def get_tensor(self, name):
        arr = self._array(name)
        if self._framework in ("numpy", "np"):
            return arr
        return _to_torch(arr, _NP[self._header[name]["dtype"]][1])

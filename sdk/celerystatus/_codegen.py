"""Protobuf code generation for ``celerystatus.v1`` and ``celerystatus.keda`` (build time only).

Runs grpcio-tools' bundled protoc with the mypy-protobuf plugins so that the
generated modules come with ``.pyi`` stubs. The proto tree mirrors the Python
import path, so the generated imports need no rewriting.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _plugin(name: str) -> list[str]:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).exists():
        return []
    return [f"--plugin={name}={exe}"]


def generate(proto_root: Path, out_root: Path) -> list[Path]:
    """Compile every ``.proto`` under *proto_root* into *out_root*; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))
    if not protos:
        raise RuntimeError(f"no .proto files under {proto_root}")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
    ]
    mypy_plugins = _plugin("protoc-gen-mypy") + _plugin("protoc-gen-mypy_grpc")
    if len(mypy_plugins) == 2:
        args += [*mypy_plugins, f"--mypy_out={out_root}", f"--mypy_grpc_out={out_root}"]
    rc = protoc.main([*args, *protos])
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc}")
    written = []
    for proto in protos:
        stem = out_root / proto[: -len(".proto")]
        written += [p for p in stem.parent.glob(stem.name + "_pb2*") if p.is_file()]
    return written


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    for path in generate(root / "protos", root / "sdk"):
        print(path)

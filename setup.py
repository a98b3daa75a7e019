"""Generates the protobuf and gRPC modules from protos/ before every build.

The generated files are not committed; they land in sdk/celerystatus/v1/ and
sdk/celerystatus/keda/ so that editable installs and wheels import them the same
way (``celerystatus.v1``, ``celerystatus.keda``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

ROOT = Path(__file__).parent.resolve()


def _load_codegen():  # type: ignore[no-untyped-def]
    # Loaded by path: importing the celerystatus package would need the
    # modules this step is about to generate.
    spec = importlib.util.spec_from_file_location(
        "_celerystatus_codegen", ROOT / "sdk" / "celerystatus" / "_codegen.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GenerateProtos(Command):
    description = "generate protobuf/gRPC modules from protos/"
    user_options: list[tuple[str, str | None, str]] = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        _load_codegen().generate(ROOT / "protos", ROOT / "sdk")


class BuildPy(build_py):
    def run(self) -> None:
        self.run_command("generate_protos")
        super().run()


class Develop(develop):
    def run(self) -> None:
        self.run_command("generate_protos")
        super().run()


setup(cmdclass={"generate_protos": GenerateProtos, "build_py": BuildPy, "develop": Develop})

"""Build the optional C speedups; all metadata lives in setup.cfg.

The extension only makes ``ngxws.ws.frames.FrameTracker`` faster; the pure
Python tracker is the same state machine.  So, as python-websockets does, a
missing or failing compiler must not fail the install: it prints a warning
and ngxws runs on the fallback.
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

# Everything a compiler (or its absence) may raise while building.
_BUILD_ERRORS = (CCompilerError, ExecError, PlatformError, OSError, ValueError)


class optional_build_ext(build_ext):
    """build_ext that reports a failed C build instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except _BUILD_ERRORS as exc:
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except _BUILD_ERRORS as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        print(
            f"WARNING: ngxws C speedups not built ({exc}); using the pure-Python frame tracker.",
            file=sys.stderr,
        )


setup(
    ext_modules=[
        Extension(
            "ngxws.ws._speedups",
            ["ngxws/ws/_speedups.c"],
            depends=["ngxws/ws/_relay.c", "ngxws/ws/_loglines.c", "ngxws/ws/_splice.c", "ngxws/ws/_poller.c", "ngxws/ws/_head101.c"],
            optional=True,
        ),
        # fast_head's scan of a whole request head (fast_head.py_scan_head in C)
        Extension("ngxws.http._head", ["ngxws/http/_head.c"], optional=True),
    ],
    cmdclass={"build_ext": optional_build_ext},
)

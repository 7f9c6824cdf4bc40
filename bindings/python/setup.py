# setup.py: `pip install ./bindings/python` builds libgemma4 from this repository with CMake and
# bundles the shared library inside the package (gemma4/libgemma4.so), so `import gemma4` works
# from any directory with no environment variable. The package metadata is in pyproject.toml.
#   GEMMA4_CMAKE_ARGS  extra CMake arguments, e.g. "-DGEMMA4_CUDA=OFF" (default: CUDA when nvcc
#                      is found, as the top-level build)
# Needs cmake, a C compiler and the library's build dependencies (scripts/install_deps.sh).
import os
import shlex
import shutil
import subprocess
import tempfile

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if not os.path.exists(os.path.join(ROOT, "CMakeLists.txt")):
            raise RuntimeError("gemma4: the library's sources are not at %s; install from the "
                               "repository (pip install ./bindings/python)" % ROOT)
        extra = shlex.split(os.environ.get("GEMMA4_CMAKE_ARGS", ""))
        with tempfile.TemporaryDirectory(prefix="gemma4-build-") as build:
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                                   "-DGEMMA4_BUILD_TESTS=OFF", "-DGEMMA4_BUILD_SAMPLES=OFF",
                                   "-DGEMMA4_BUILD_BENCH=OFF"] + extra)
            subprocess.check_call(["cmake", "--build", build, "--target", "gemma4", "-j",
                                   str(os.cpu_count() or 2)])
            lib = os.path.realpath(os.path.join(build, "libgemma4.so"))
            dest = os.path.join(self.build_lib, "gemma4", "libgemma4.so")
            shutil.copyfile(lib, dest)  # the real file, under the name the loader looks for


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # the wheel holds a native library: tag it for this platform
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)

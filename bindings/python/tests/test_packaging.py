# test_packaging.py: the library is found without environment variables.
#   - `pip install ./bindings/python` into a fresh virtual environment builds libgemma4 and
#     bundles it in the package: `import gemma4` then works from any directory;
#   - samples/python/chat.py, run from another directory, finds the repository's build/.
# GEMMA4_LIBRARY is removed from the environment of both. The pip install builds the library
# with CMake (CPU only, GEMMA4_CMAKE_ARGS=-DGEMMA4_CUDA=OFF, to keep it short) and needs PyPI
# for setuptools (pip's isolated build environment).
import os
import subprocess
import sys
import venv

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
E2B = os.path.join(ROOT, "tests", "golden", "e2b")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GEMMA4_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def test_pip_install_bundles_the_library(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", os.path.join(ROOT, "bindings", "python")],
                   check=True, env=clean_env(GEMMA4_CMAKE_ARGS="-DGEMMA4_CUDA=OFF"))
    code = ("import gemma4, gemma4._lib as l\n"
            "print(l.lib._gemma4_path)\n"
            "with gemma4.Model.load(%r, n_threads=1) as m:\n"
            "    print(len(m.session().generate('hi', max_tokens=3, stream=False)) >= 0)\n" % E2B)
    r = subprocess.run([py, "-c", code], cwd=str(tmp_path), env=clean_env(), capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    path, ok = r.stdout.split()
    assert path.startswith(str(env_dir)) and path.endswith("site-packages/gemma4/libgemma4.so"), path
    assert ok == "True"


def test_sample_finds_the_build_dir(tmp_path):
    # the repository's build/ (bindings/python/run_tests.sh is given it as LIBDIR)
    assert os.path.exists(os.path.join(ROOT, "build", "libgemma4.so")), "build the repository first"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "samples", "python", "chat.py"), E2B,
                        "--max-tokens", "4"], input="Hello\n", cwd=str(tmp_path), env=clean_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("> ") and len(r.stdout) > len("> \n> "), r.stdout

"""A `mast` installed from a wheel flashes, simulates and tests boards outside the checkout:
the build (host-tools/setup.py) puts firmware/, boards/ and tests/hardware/ into
mast_tools/bundle/, and mast_tools.firmware finds them there. Built here with setuptools'
own build step (no network, no wheel package needed) and run from a folder elsewhere."""

import os
import subprocess
import sys

import pytest

from boardcli import HOST_TOOLS, ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("build"))
    r = subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", out], cwd=HOST_TOOLS,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout
    return os.path.join(out, "lib")


def run(lib, cwd, *args, timeout=120):
    env = dict(os.environ, PYTHONPATH=lib)  # the built package, not the checkout
    return subprocess.run([sys.executable] + list(args), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def test_the_build_carries_the_firmware_the_boards_and_the_hardware_suite(built):
    bundle = os.path.join(built, "mast_tools", "bundle")
    for rel in ("firmware/board/main.py", "firmware/board/root/boot.py", "firmware/mast/config.py",
                "firmware/runtime/driver.py", "firmware/manifest.py", "boards/unix-sim.json",
                "boards/olimex-esp32-poe.json", "hardware/conftest.py", "hardware/status_schema.py",
                "hardware/test_hw_flash.py"):
        assert os.path.isfile(os.path.join(bundle, rel)), rel
    found = [n for _, _, files in os.walk(bundle) for n in files if n.endswith((".pyc", ".mpy"))]
    assert found == []


def test_the_built_mast_uses_its_own_bundle_outside_the_checkout(built, tmp_path):
    r = run(built, str(tmp_path), "-c", "import mast_tools.firmware as f; print(f.FIRMWARE_DIR); "
                                        "print(f.BOARDS_DIR); print(f.HARDWARE_TESTS_DIR)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [os.path.join(built, "mast_tools", "bundle", x)
                                for x in ("firmware", "boards", "hardware")]
    r = run(built, str(tmp_path), "-m", "mast_tools", "flash", "--port", "/dev/ttyUSB42", "--board", "nope")
    assert r.returncode == 1 and "pick one of: esp32-devkitc, esp32-sim7600, lilygo-t-a7670" in r.stderr


def test_the_built_mast_flashes_and_tests_a_simulated_board_outside_the_checkout(built, tmp_path, micropython):
    r = run(built, str(tmp_path), "-m", "mast_tools", "hwtest", "-k", "flash_installs or hello", "--json",
            timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert ROOT not in r.stderr  # the suite it ran is the bundled one
    assert os.path.join(built, "mast_tools", "bundle", "hardware") in r.stderr
    import json

    doc = json.loads(r.stdout)
    assert doc["counts"]["passed"] == 2 and doc["counts"]["failed"] == 0

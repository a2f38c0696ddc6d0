# Plain test runner for tests/core modules. Runs on MicroPython (unix port) and CPython.
#
# A core test module is a plain module: top-level functions named test_* that use assert.
# This runner imports one such module, calls every test_* function, and prints
#
#     PASS test_name
#     FAIL test_name: ExcType: message      (followed by the traceback)
#     ...
#     N passed, M failed
#
# Usage (as tests/test_micropython_core.py runs it, importing mpy-cross output like a board):
#
#     MICROPYPATH=build/mpy:.frozen micropython -X heapsize=128K -m run_core_mpy MODULE [TEST ...]
#
# The optional TEST names give the definition order (MicroPython has no inspect and its module
# dict is unordered); any test_* function not named there runs afterwards, sorted by name.
# Exit status: 0 when all passed, 1 when any failed or the module did not import, 2 on bad usage.
import sys

try:
    _print_exception = sys.print_exception  # MicroPython
except AttributeError:  # CPython
    import traceback

    def _print_exception(exc):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stdout)


def _describe(exc):
    msg = str(exc)
    name = type(exc).__name__
    if msg:
        return name + ": " + msg
    return name


def collect(module, order=None):
    """Return [(name, function)] for the module's test_* callables, in the order to run them."""
    found = {}
    for name in dir(module):
        if name.startswith("test_"):
            obj = getattr(module, name)
            if callable(obj):
                found[name] = obj
    tests = []
    for name in order or ():
        if name in found:
            tests.append((name, found.pop(name)))
    for name in sorted(found):
        tests.append((name, found[name]))
    return tests


def run(module, order=None, only=False):
    """Run the tests of an imported module (only those in `order` if only); print one line
    per test. Return (passed, failed)."""
    passed = 0
    failed = 0
    tests = collect(module, order)
    if only:
        tests = [t for t in tests if t[0] in order]
    for name, func in tests:
        try:
            func()
        except Exception as exc:  # noqa: BLE001 - a test runner reports everything
            failed += 1
            print("FAIL " + name + ": " + _describe(exc))
            _print_exception(exc)
        else:
            passed += 1
            print("PASS " + name)
    return passed, failed


def main(modname, order=None, only=False):
    """Import `modname`, run its tests, print the summary line, return the exit status."""
    try:
        module = __import__(modname)
    except Exception as exc:  # noqa: BLE001
        print("FAIL import " + modname + ": " + _describe(exc))
        _print_exception(exc)
        print("0 passed, 1 failed")
        return 1
    passed, failed = run(module, order, only)
    print("%d passed, %d failed" % (passed, failed))
    if passed == 0 and failed == 0:
        print("no test_* functions in " + modname)
        return 1
    return 1 if failed else 0


def _cli():
    args = sys.argv[1:]
    only = "--only" in args
    if only:
        args.remove("--only")
    if not args:
        print("usage: run_core_mpy MODULE [--only] [TEST ...]")
        return 2
    # Nothing may come from the current directory (the repo root): only from the build output.
    while "" in sys.path:
        sys.path.remove("")
    return main(args[0], args[1:], only)


if __name__ == "__main__":
    sys.exit(_cli())

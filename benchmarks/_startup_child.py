"""Run the demo app under cProfile until told to stop: ``startup.py --cprofile``'s child.

    python _startup_child.py OUT.prof INSTRUMENTED(0|1) app.py [app args...]

What ``opentelemetry-instrument`` does (its ``sitecustomize`` runs ``initialize()`` at interpreter
start, before any program), done here after the profiler starts, so the distro's set-up is counted:
with INSTRUMENTED=1 the auto-instrumentation ``sitecustomize`` is imported first, then the app runs as
``__main__``. On SIGUSR1 (sent by the harness once the first ``POST /chat`` was answered) the
profile of the main thread so far is written to OUT.prof (written whole, then renamed).
"""

import sys

del sys.path[0]  # this folder: its profile.py would shadow the standard library's, which cProfile imports

import cProfile  # noqa: E402
import os  # noqa: E402
import runpy  # noqa: E402
import signal  # noqa: E402

out, instrumented, app = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
profiler = cProfile.Profile()


def _dump(signum, frame) -> None:
    profiler.disable()
    profiler.dump_stats(out + ".tmp")
    os.replace(out + ".tmp", out)


signal.signal(signal.SIGUSR1, _dump)
sys.argv = sys.argv[3:]
sys.path.insert(0, os.path.dirname(os.path.abspath(app)))
profiler.enable()
if instrumented:
    from opentelemetry.instrumentation.auto_instrumentation import sitecustomize  # noqa: F401 - runs initialize()
runpy.run_path(app, run_name="__main__")

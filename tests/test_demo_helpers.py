"""The small helpers plugins use: lazy_model, static_folder, report_progress."""

import threading
import time
from pathlib import Path

from vectorfair import Demo, lazy_model, report_progress, static_folder
from vectorfair.progress import reporting_to


class Slow(Demo):
    name = "slow"
    title = "slow"
    loads = 0

    @lazy_model
    def model(self):
        Slow.loads += 1
        time.sleep(0.05)
        return object()


def test_lazy_model_loads_once_under_concurrent_first_use():
    demo = Slow()
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(demo.model)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Slow.loads == 1 and len({id(m) for m in seen}) == 1
    assert Slow().model is not demo.model, "each demo instance has its own model"


def test_static_folder_points_at_the_package_static_directory():
    assert static_folder("x", "/a/b/pkg/__init__.py") == [("x", Path("/a/b/pkg/static"))]


def test_report_progress_reaches_the_current_reporter_only():
    calls = []
    report_progress(1, 2, "frames")  # outside any job: ignored
    with reporting_to(lambda done, total, unit: calls.append((done, total, unit))):
        report_progress(3, 4, "frames")
    report_progress(5, 6, "frames")
    assert calls == [(3, 4, "frames")]

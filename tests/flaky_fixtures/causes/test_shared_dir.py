"""Resource, not dependency: runs at once collide on one directory inside the project.

Writes inside the project are allowed in the sandbox (they are not "outside"), so only the
parallel experiment raises the failure rate.
"""

import shutil
import time
from pathlib import Path

BUCKET = Path(__file__).resolve().parent / "s3:" / "my-bucket"


def test_export_to_bucket() -> None:
    BUCKET.mkdir(parents=True)  # FileExistsError when another run holds it
    try:
        (BUCKET / "report.csv").write_text("a,b\n")
        time.sleep(0.08)
        assert (BUCKET / "report.csv").read_text() == "a,b\n"
    finally:
        shutil.rmtree(BUCKET.parent, ignore_errors=True)

"""The application version reported in every recommendation's ``meta``.

Derived from the model code itself (not from git), so it is the same in a container
without a checkout and changes whenever the recommending code changes.
"""

import hashlib
from pathlib import Path

VERSION = "0.1.0"


def _code_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


APPLICATION_VERSION = f"{VERSION}+{_code_hash()}"

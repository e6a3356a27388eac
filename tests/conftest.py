"""Session fixtures for the real services (MariaDB, ZooKeeper, MediaWiki, Prometheus and its
Pushgateway).

Each fixture starts its service through ``scripts/services.sh start <name>`` (a no-op taking
milliseconds when it is already up) and fails the test with the script's own message when
the service cannot be brought up: tests that need a service never skip.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
SERVICES = REPO / "scripts" / "services.sh"
SERVICES_DIR = Path(os.environ.get("ADDLINK_SERVICES_DIR", REPO / "var" / "services"))
MW_PORT = int(os.environ.get("ADDLINK_MW_PORT", "8089"))
ZK_PORT = int(os.environ.get("ADDLINK_ZK_PORT", "2181"))
PROM_PORT = int(os.environ.get("ADDLINK_PROM_PORT", "9090"))
PUSHGATEWAY_PORT = int(os.environ.get("ADDLINK_PUSHGATEWAY_PORT", "9091"))
USER_AGENT = "addlink-tests/0.1 (https://example.org/addlink; addlink tests on 127.0.0.1)"


def start_service(name: str) -> str:
    """Start one service (or find it running); fail the test with the script's output if not."""
    proc = subprocess.run(
        [str(SERVICES), "start", name], capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        pytest.fail(
            f"service {name!r} could not be started by {SERVICES.relative_to(REPO)} "
            f"(exit {proc.returncode}):\n{proc.stderr.strip()}\n{proc.stdout.strip()}",
            pytrace=False,
        )
    return proc.stderr


@pytest.fixture(scope="session", autouse=True)
def crash_marker(tmp_path_factory) -> Path:
    """The marker file of ``tests.runner_support:crash_once``, in the environment before any
    worker pool starts the forkserver its workers come from (and inherit its environment)."""
    marker = tmp_path_factory.mktemp("crash") / "crashed"
    os.environ["ADDLINK_TEST_CRASH_MARKER"] = str(marker)
    return marker


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for this test session, dropped at the end."""
    start_service("mariadb")
    db = f"addlink_test_{secrets.token_hex(4)}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        yield f"mysql://root@127.0.0.1:3306/{db}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


@pytest.fixture(scope="session")
def zk_hosts() -> str:
    """ZooKeeper standalone on loopback, as a kazoo ``hosts`` string."""
    start_service("zookeeper")
    return f"127.0.0.1:{ZK_PORT}"


@pytest.fixture(scope="session")
def pushgateway_url() -> str:
    """A Prometheus Pushgateway (Debian's) on loopback. Shared with other test sessions:
    push under a job name of your own and delete your groups, never wipe the others'."""
    start_service("pushgateway")
    return f"http://127.0.0.1:{PUSHGATEWAY_PORT}"


@pytest.fixture(scope="session")
def prometheus_url(pushgateway_url) -> str:
    """Prometheus (Debian's) scraping the Pushgateway every second (honor_labels), so what a
    job pushed can be queried through ``/api/v1/query`` a few seconds later."""
    start_service("prometheus")
    return f"http://127.0.0.1:{PROM_PORT}"


@dataclass
class MediaWiki:
    """The local MediaWiki (Debian package, ltgwiki dump imported), driven over its API.

    Anonymous edits are allowed and not rate limited; the change tag
    ``newcomer task add link`` is defined and may be added by anyone:
    ``mediawiki.edit(title, text, tags=["newcomer task add link"])``.
    Edits persist in ``var/services/mediawiki`` across test sessions (the import is cached),
    so tests should not assume a page is still as the dump has it after another test edited it.
    """

    api_url: str
    index_url: str
    dbname: str = "ltgwiki"
    lang: str = "ltg"
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.session.headers["User-Agent"] = USER_AGENT

    def get(self, **params) -> dict:
        """A GET to api.php (format=json, formatversion=2); raises on API errors."""
        return self._answer(self.session.get(self.api_url, params=self._json(params), timeout=30))

    def post(self, **params) -> dict:
        """A POST to api.php, as ``get``."""
        return self._answer(self.session.post(self.api_url, data=self._json(params), timeout=60))

    @staticmethod
    def _json(params: dict) -> dict:
        return params | {"format": "json", "formatversion": "2"}

    @staticmethod
    def _answer(resp: requests.Response) -> dict:
        resp.raise_for_status()
        data = resp.json()
        if "error" in data:
            raise RuntimeError(f"MediaWiki API error: {data['error']}")
        return data

    def edit(self, title: str, text: str, tags: list[str] | tuple[str, ...] | None = None,
             summary: str = "addlink test edit", **extra) -> int:
        """Save ``text`` as an anonymous edit; the new revision id (current one if unchanged)."""
        params = {"action": "edit", "title": title, "text": text, "summary": summary,
                  "token": "+\\", **extra}
        if tags:
            params["tags"] = "|".join(tags)
        result = self.post(**params)["edit"]
        if result.get("result") != "Success":
            raise RuntimeError(f"edit of {title!r} failed: {result}")
        return int(result.get("newrevid") or self.latest_revid(title))

    def undo(self, title: str, revid: int, tags: list[str] | None = None) -> int:
        """Undo revision ``revid`` (core adds the ``mw-undo`` tag); the new revision id."""
        params = {"action": "edit", "title": title, "undo": str(revid), "token": "+\\",
                  "summary": "addlink test undo"}
        if tags:
            params["tags"] = "|".join(tags)
        result = self.post(**params)["edit"]
        if result.get("result") != "Success" or "newrevid" not in result:
            raise RuntimeError(f"undo of r{revid} on {title!r} failed: {result}")
        return int(result["newrevid"])

    def page(self, title: str) -> dict:
        """prop=info|revisions of one page (``missing`` set when it does not exist)."""
        data = self.get(action="query", prop="info|revisions", titles=title,
                        rvprop="ids|timestamp|tags|content", rvslots="main")
        return data["query"]["pages"][0]

    def page_id(self, title: str) -> int | None:
        page = self.page(title)
        return None if page.get("missing") else int(page["pageid"])

    def latest_revid(self, title: str) -> int:
        return int(self.page(title)["lastrevid"])

    def wikitext(self, title: str) -> str:
        return self.page(title)["revisions"][0]["slots"]["main"]["content"]

    @property
    def conf_path(self) -> Path:
        return SERVICES_DIR / "mediawiki" / "conf" / "LocalSettings.php"

    @property
    def db_path(self) -> Path:
        """The wiki's SQLite database (open read-only, e.g. ``?mode=ro``, to cross-check)."""
        return SERVICES_DIR / "mediawiki" / "data" / f"{self.dbname}.sqlite"

    def create_bot_password(self, appid: str | None = None,
                            grants: str = "basic,highvolume,editpage") -> tuple[str, str]:
        """A new bot password of the Admin user: (``Admin@<appid>``, password)."""
        appid = appid or f"t{secrets.token_hex(4)}"
        password = secrets.token_hex(16)
        proc = subprocess.run(
            ["php", "/usr/share/mediawiki/maintenance/createBotPassword.php",
             "--appid", appid, "--grants", grants, "Admin", password],
            env={**os.environ, "MW_CONFIG_FILE": str(self.conf_path)},
            capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"createBotPassword failed: {proc.stdout}{proc.stderr}")
        return f"Admin@{appid}", password


@pytest.fixture(scope="session")
def mediawiki() -> MediaWiki:
    """MediaWiki 1.39 on http://127.0.0.1:8089 with the complete ltgwiki dump imported."""
    start_service("mediawiki")
    base = f"http://127.0.0.1:{MW_PORT}"
    return MediaWiki(api_url=f"{base}/api.php", index_url=f"{base}/index.php")


# Trained models (session-scoped, trained once from the shared dumps): ltg_model, en_model.
from tests.model_fixtures import en_model, ltg, ltg_corpus, ltg_model  # noqa: E402, F401

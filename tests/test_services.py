"""The service fixtures and scripts/services.sh against the real services."""

from __future__ import annotations

import bz2
import html
import re
import subprocess
import uuid

import pymysql
from kazoo.client import KazooClient

from tests.conftest import REPO, SERVICES

DUMP = REPO.parent / "shared" / "data" / "dumps" / "ltgwiki-20170901-pages-articles.xml.bz2"


def run_services(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SERVICES), *args], capture_output=True, text=True, timeout=120)


def test_start_is_idempotent(mysql_url, zk_hosts, mediawiki):
    proc = run_services("start")
    assert proc.returncode == 0, proc.stderr
    assert "mariadb: up" in proc.stderr
    assert "zookeeper: up" in proc.stderr
    assert "mediawiki: up" in proc.stderr
    assert "installing" not in proc.stderr and "started" not in proc.stderr


def test_status_reports_all_three(mediawiki, zk_hosts):
    proc = run_services("status")
    assert proc.returncode == 0
    assert "zookeeper: up 127.0.0.1:2181" in proc.stdout
    assert f"mediawiki: up {mediawiki.api_url}" in proc.stdout
    assert "mariadb: up" in proc.stdout


def test_unknown_service_is_a_clear_error():
    proc = run_services("start", "postgres")
    assert proc.returncode != 0
    assert "unknown service 'postgres'" in proc.stderr
    proc = run_services("restart")
    assert proc.returncode != 0
    assert "usage:" in proc.stderr


def test_mysql_url_is_a_fresh_database(mysql_url):
    m = re.fullmatch(r"mysql://root@127\.0\.0\.1:3306/(addlink_test_[0-9a-f]{8})", mysql_url)
    assert m, mysql_url
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                           database=m.group(1))
    with conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone() == (1,)


def test_zookeeper_answers_kazoo(zk_hosts):
    zk = KazooClient(hosts=zk_hosts, timeout=10)
    zk.start(timeout=10)
    try:
        # needs "envi" in the four-letter-word whitelist
        assert zk.server_version()[:2] >= (3, 5)
        path = f"/addlink-test/{uuid.uuid4().hex}"
        zk.create(path, b"x", makepath=True, ephemeral=True)
        assert zk.get(path)[0] == b"x"
    finally:
        zk.stop()
        zk.close()


def test_mediawiki_has_the_complete_dump(mediawiki):
    with bz2.open(DUMP, "rt", encoding="utf-8") as f:
        dump_titles = [html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", f.read())]
    assert len(dump_titles) == 2004
    info = mediawiki.get(action="query", meta="siteinfo", siprop="general|statistics")
    assert info["query"]["general"]["wikiid"] == "ltgwiki"
    assert info["query"]["general"]["dbtype"] == "sqlite"
    assert info["query"]["statistics"]["pages"] >= len(dump_titles)
    # every title of the dump exists (spot check a spread of them, 50 per request)
    sample = dump_titles[::41]
    assert len(sample) <= 50
    pages = mediawiki.get(action="query", titles="|".join(sample))["query"]["pages"]
    assert len(pages) == len(sample)
    assert not [p["title"] for p in pages if p.get("missing")]


def test_link_tables_and_search_are_filled(mediawiki):
    # categories and templates come from refreshLinks after the fast import
    # the stub template and the category it adds are on ~476 articles of the dump
    used = mediawiki.get(action="query", list="embeddedin", eititle="Taiss:Nadabeigts rakstīņs",
                         einamespace="0", eilimit="max")
    assert len(used["query"]["embeddedin"]) > 400
    members = mediawiki.get(action="query", list="categorymembers",
                            cmtitle="Kategoreja:Nadabeigti rakstīni", cmlimit="max")
    assert len(members["query"]["categorymembers"]) > 400
    hits = mediawiki.get(action="query", list="search", srsearch="Latgola", srwhat="text",
                         srnamespace="0", srlimit="10", srinfo="totalhits")
    assert hits["query"]["searchinfo"]["totalhits"] > 10


def test_anonymous_tagged_edit(mediawiki):
    title = f"Addlink services test {uuid.uuid4().hex[:8]}"
    rev1 = mediawiki.edit(title, "Pyrmuo versija ar [[Latgola]].")
    rev2 = mediawiki.edit(title, "Ūtrō versija ar [[Latgola]] i [[Rēzekne]].",
                          tags=["newcomer task add link"])
    assert rev2 > rev1
    page = mediawiki.page(title)
    assert page["lastrevid"] == rev2
    assert page["revisions"][0]["tags"] == ["newcomer task add link"]
    assert mediawiki.page_id(title) == page["pageid"]
    rev3 = mediawiki.undo(title, rev2)
    assert "mw-undo" in mediawiki.page(title)["revisions"][0]["tags"]
    assert rev3 > rev2
    assert mediawiki.page_id(f"{title} that does not exist") is None

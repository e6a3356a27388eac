"""The recommendation service on a real gunicorn (loopback): SPEC §7 routes against the real
local MediaWiki (GET) and fixture wikitext (POST), equal to in-process ``recommend``; every
error path; metrics, JSON logs; the x-amples checker; schemathesis; the docs in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import requests

from model import open_model, recommend
from model.dump import pages
from tests.model_fixtures import EN_DUMP, FIXTURES, LTG_DUMP
from tests.service_support import REPO, Gunicorn, free_port

TITLE = "Latgola"  # a page of the local ltgwiki (the dump's)
BODY_LIMIT = 300_000
CAP = 50
ROUTE = "/v1/linkrecommendations"


def service_config(ltg_model, en_model, mediawiki, **service) -> dict:
    return {
        "service": {"monitor": {"wiki": "ltgwiki", "title": TITLE},
                    "max_body_bytes": BODY_LIMIT, "max_recommendations": CAP, **service},
        "wikis": {
            "ltgwiki": {"language": "ltg", "domain": "ltg.wikipedia.org",
                        "model": str(ltg_model),
                        "source": {"type": "api", "api_url": mediawiki.api_url},
                        # a runner field: the service leaves it to the runner
                        "criteria": {"minimum_link_score": 0.5}},
            "enwiki": {"language": "en", "domain": "en.wikipedia.org", "model": str(en_model),
                       "source": {"type": "dump", "path": str(EN_DUMP)}},
        },
    }


@pytest.fixture(scope="module")
def server(ltg_model, en_model, mediawiki):
    with Gunicorn(service_config(ltg_model, en_model, mediawiki), workers=2) as g:
        yield g


@pytest.fixture(scope="module")
def en(en_model):
    model = open_model(en_model)
    yield model
    model.close()


def url(server, wiki: str, title: str) -> str:
    domain = wiki.removesuffix("wiki")
    return f"{server.url}{ROUTE}/wikipedia/{domain}/{requests.utils.quote(title, safe='')}"


# ---------------------------------------------------------------------------- answers


def test_get_fetches_from_mediawiki_and_equals_in_process(server, mediawiki, ltg):
    titles = [TITLE] + [p["title"] for p in mediawiki.get(
        action="query", list="allpages", apnamespace=0, apfilterredir="nonredirects",
        aplimit=6)["query"]["allpages"]]
    linked = 0
    for title in titles:
        page = mediawiki.page(title)
        wikitext = page["revisions"][0]["slots"]["main"]["content"]
        query = {"threshold": 0.3, "max_recommendations": 20,
                 "sections_to_exclude": ["Nūrodys", "%LEAD%"]}
        got = requests.get(url(server, "ltgwiki", title), params=query, timeout=30)
        assert got.status_code == 200, got.text
        want = recommend(ltg, wikitext, title=page["title"], pageid=page["pageid"],
                         revid=page["lastrevid"], threshold=0.3, max_recommendations=20,
                         excluded_sections=("Nūrodys", "%LEAD%"))
        assert got.json() == want
        linked += want["links_count"]
        # an explicit revision (the current one) answers the same
        rev = requests.get(url(server, "ltgwiki", title.replace(" ", "_")),
                           params={**query, "revision": page["lastrevid"]}, timeout=30)
        assert rev.json() == want
    assert linked > 0, "no page with links: nothing compared"


def test_post_fixture_wikitext_same_format_and_offsets(server, en):
    fixture = json.loads((FIXTURES / "provide_query_post/0/expected_data.json").read_text())
    for source in ("provide_query_post/0/source.wikitext", "T308244/article.wikitext"):
        wikitext = (FIXTURES / source).read_text(encoding="utf-8")
        body = {"wikitext": wikitext, "revid": 123, "pageid": 45}
        got = requests.post(url(server, "enwiki", "Cat"), json=body,
                            params={"threshold": 0.0}, timeout=30)
        assert got.status_code == 200, got.text
        result = got.json()
        assert set(result) == set(fixture) and set(result["meta"]) == set(fixture["meta"])
        assert result["meta"]["format_version"] == 1
        assert (result["page_title"], result["pageid"], result["revid"]) == ("Cat", 45, 123)
        for i, link in enumerate(result["links"]):
            assert set(link) == set(fixture["links"][0])
            for key, value in fixture["links"][0].items():
                assert type(link[key]) is type(value), key
            start = link["wikitext_offset"]  # code points in the full wikitext
            end = start + len(link["link_text"])
            assert wikitext[start:end] == link["link_text"]
            assert wikitext[start - len(link["context_before"]):start] == link["context_before"]
            assert wikitext[end:end + len(link["context_after"])] == link["context_after"]
            assert link["link_index"] == i
        assert result == recommend(en, wikitext, title="Cat", pageid=45, revid=123,
                                   threshold=0.0)
    assert result["links_count"] > 0


def test_post_equals_in_process_on_many_pages(server, ltg):
    articles = [p for p in pages(LTG_DUMP) if p.namespace == 0 and not p.redirect][:40]
    sections = ["Nūrodys", "Literatura"]
    linked = 0
    with requests.Session() as http:
        for page in articles:
            body = {"wikitext": page.text, "revid": page.rev_id,
                    "pageid": page.page_id, "sections_to_exclude": sections}
            got = http.post(url(server, "ltgwiki", page.title), json=body,
                            params={"threshold": 0.2, "max_recommendations": 20}, timeout=30)
            assert got.status_code == 200, got.text
            want = recommend(ltg, page.text, title=page.title, pageid=page.page_id,
                             revid=page.rev_id, threshold=0.2,
                             max_recommendations=20, excluded_sections=tuple(sections))
            assert got.json() == want, page.title
            linked += want["links_count"]
    assert linked >= 5


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("method, path, query, body, status, error, parameter", [
    ("GET", "/wikipedia/xx/Latgola", {}, None, 400, "unknown_wiki", None),
    ("GET", "/wikibooks/ltg/Latgola", {}, None, 400, "unknown_wiki", None),
    ("GET", "/wikipedia/ltg/Latgola", {"threshold": "high"}, None, 400, "bad_request",
     "threshold"),
    ("GET", "/wikipedia/ltg/Latgola", {"threshold": "1.5"}, None, 400, "bad_request",
     "threshold"),
    ("GET", "/wikipedia/ltg/Latgola", {"threshold": "nan"}, None, 400, "bad_request",
     "threshold"),
    ("GET", "/wikipedia/ltg/Latgola", {"max_recommendations": "2.5"}, None, 400,
     "bad_request", "max_recommendations"),
    ("GET", "/wikipedia/ltg/Latgola", {"max_recommendations": str(CAP + 1)}, None, 400,
     "bad_request", "max_recommendations"),
    ("GET", "/wikipedia/ltg/Latgola", {"revision": "-3"}, None, 400, "bad_request",
     "revision"),
    ("GET", "/wikipedia/ltg/Latgola", {"language_code": "xx"}, None, 400, "bad_request",
     "language_code"),
    ("GET", "/wikipedia/ltg/Latgola", {"sections_to_exclude": ["x" * 300]}, None, 400,
     "bad_request", "sections_to_exclude"),
    ("GET", "/wikipedia/ltg/A%5Bb%5D", {}, None, 400, "bad_request", "page_title"),
    ("GET", "/wikipedia/ltg/Addlink_no_such_page_at_all", {}, None, 404, "not_found", None),
    ("GET", "/wikipedia/ltg/Latgola", {"revision": "999999999"}, None, 404, "not_found", None),
    ("POST", "/wikipedia/ltg/Latgola", {}, b"not json", 400, "bad_request", "body"),
    ("POST", "/wikipedia/ltg/Latgola", {}, b"[1, 2]", 400, "bad_request", "body"),
    ("POST", "/wikipedia/ltg/Latgola", {}, {"revid": 1, "pageid": 1}, 400, "bad_request",
     "wikitext"),
    ("POST", "/wikipedia/ltg/Latgola", {}, {"wikitext": "x", "pageid": 1}, 400,
     "bad_request", "revid"),
    ("POST", "/wikipedia/ltg/Latgola", {}, {"wikitext": "x", "revid": "1", "pageid": 1}, 400,
     "bad_request", "revid"),
    ("POST", "/wikipedia/ltg/Latgola", {}, {"wikitext": "x", "revid": 1, "pageid": -1}, 400,
     "bad_request", "pageid"),
    ("POST", "/wikipedia/ltg/Latgola", {},
     {"wikitext": "x", "revid": 1, "pageid": 1, "sections_to_exclude": "Notes"}, 400,
     "bad_request", "sections_to_exclude"),
    ("PUT", "/wikipedia/ltg/Latgola", {}, None, 405, "method_not_allowed", None),
])
def test_errors_are_json_and_name_the_problem(server, method, path, query, body, status,
                                              error, parameter):
    kw = {"data": body} if isinstance(body, bytes) else {"json": body}
    resp = requests.request(method, server.url + ROUTE + path, params=query, timeout=30, **kw)
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    data = resp.json()
    assert data["error"] == error and data["message"]
    if parameter:
        assert data["parameter"] == parameter and data["message"].startswith(parameter)
    if error == "unknown_wiki":
        assert data["valid"] == ["wikipedia/en", "wikipedia/ltg"]
        assert "wikipedia/en" in data["message"] and "wikipedia/ltg" in data["message"]


def test_unknown_routes_and_oversized_bodies_answer_json(server):
    for resp in (requests.get(server.url + "/nope", timeout=10),
                 requests.delete(server.url + "/healthz", timeout=10)):
        assert resp.status_code in (404, 405)
        assert resp.headers["Content-Type"].startswith("application/json"), resp.text
        assert "<html" not in resp.text.lower()
    big = {"wikitext": "a " * (BODY_LIMIT // 2), "revid": 1, "pageid": 1}
    resp = requests.post(url(server, "ltgwiki", TITLE), json=big, timeout=30)
    assert resp.status_code == 413
    assert resp.json()["error"] == "body_too_large"
    assert str(BODY_LIMIT) in resp.json()["message"]
    # just under the limit is served
    ok = {"wikitext": "Latgola " * ((BODY_LIMIT - 200) // 8), "revid": 1, "pageid": 1}
    assert requests.post(url(server, "ltgwiki", TITLE), json=ok, timeout=60).status_code == 200


def test_model_unavailable_503_deadline_504_and_readiness(ltg_model, en_model, mediawiki,
                                                          tmp_path):
    cfg = service_config(ltg_model, en_model, mediawiki, deadline=0.05)
    cfg["wikis"]["xxwiki"] = {"language": "xx", "model": str(tmp_path / "no-model"),
                              "source": {"type": "dump", "path": str(LTG_DUMP)}}
    long_text = (FIXTURES / "provide_query_post/0/source.wikitext").read_text() * 8
    with Gunicorn(cfg, workers=1) as g:
        resp = requests.post(url(g, "xxwiki", "X"), json={"wikitext": "x", "revid": 1,
                                                          "pageid": 1}, timeout=30)
        assert resp.status_code == 503 and resp.json()["error"] == "model_unavailable"
        assert "xxwiki" in resp.json()["message"]
        ready = requests.get(g.url + "/readyz", timeout=30)
        assert ready.status_code == 503
        assert ready.json()["models"]["ltgwiki"] == "ok"
        assert "no-model" in ready.json()["models"]["xxwiki"]
        assert requests.get(g.url + "/healthz", timeout=10).status_code == 200
        resp = requests.post(url(g, "ltgwiki", TITLE),
                             json={"wikitext": long_text, "revid": 1, "pageid": 1}, timeout=30)
        assert resp.status_code == 504, resp.text[:200]
        assert resp.json()["error"] == "deadline_exceeded" and "0.05 s" in resp.json()["message"]
        # the worker survives its interrupted request
        small = requests.post(url(g, "ltgwiki", TITLE),
                              json={"wikitext": "Latgola.", "revid": 1, "pageid": 1}, timeout=30)
        assert small.status_code == 200
        # the checker sees the failing readiness stanza
        proc = subprocess.run([sys.executable, "-m", "service", "check", g.url],
                              capture_output=True, text=True, timeout=120, cwd=REPO)
        assert proc.returncode == 1, proc.stdout
        assert re.search(r"FAIL GET  /readyz", proc.stdout)


# ---------------------------------------------------------------------------- operations


def test_metrics_by_route_wiki_status_and_logs_one_json_line_per_request(server):
    marker = "Zzyzxmarkerword"
    body = {"wikitext": f"{marker} Latgola ir regions.", "revid": 7, "pageid": 8}
    for _ in range(4):  # two workers: both get some
        assert requests.post(url(server, "ltgwiki", "Marker page"), json=body,
                             timeout=30).status_code == 200
    requests.get(server.url + ROUTE + "/wikipedia/xx/Y", timeout=30)
    text = requests.get(server.url + "/metrics", timeout=30).text
    requests_total = {
        tuple(re.findall(r'(\w+)="([^"]*)"', labels)): float(v)
        for labels, v in re.findall(r"^addlink_service_requests_total\{(.*)\} (\S+)$", text,
                                    re.M)}
    ok = next(v for k, v in requests_total.items()
              if dict(k) == {"route": "linkrecommendations", "status": "200", "wiki": "ltgwiki"})
    assert ok >= 4
    assert any(dict(k).get("status") == "400" and dict(k).get("wiki") == ""
               for k in requests_total)
    for name in ("addlink_service_recommendation_seconds_bucket",
                 "addlink_service_links_returned_bucket",
                 "addlink_service_model_open_seconds_count"):
        assert re.search(rf'^{name}\{{.*wiki="ltgwiki"', text, re.M), name
    lines = [json.loads(line) for line in server.logs() if line.startswith("{")]
    mine = [x for x in lines if x.get("message") == "request" and x.get("title") == "Marker page"]
    assert len(mine) == 4
    for x in mine:
        assert x["wiki"] == "ltgwiki" and x["status"] == 200 and x["links"] >= 0
        assert x["duration_ms"] > 0
    assert marker not in server.log_path.read_text(encoding="utf-8")


def test_xamples_checker_passes_against_gunicorn(server):
    proc = subprocess.run([sys.executable, "-m", "service", "check", server.url],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^1\d passed, 0 failed$", proc.stdout, re.M), proc.stdout
    spec = requests.get(server.url + "/openapi.json", timeout=10).json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op.get("x-amples"), f"{method} {path}: no x-amples"
            assert "x-monitor" in op
    down = subprocess.run([sys.executable, "-m", "service", "check",
                           f"http://127.0.0.1:{free_port()}"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert down.returncode == 6 and "cannot read the spec" in down.stderr


def test_schemathesis_finds_no_5xx_and_no_spec_violation(server, tmp_path):
    st = shutil.which("schemathesis", path=str(REPO / ".venv" / "bin")) or \
        str(REPO / ".venv" / "bin" / "schemathesis")
    proc = subprocess.run(
        [st, "run", f"{server.url}/openapi.json", "--url", server.url, "--checks", "all",
         "--max-examples", "8", "--max-time", "45", "--seed", "7", "--workers", "1",
         "--request-timeout", "30", "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    failures = out[out.find("FAILURES"):out.find("SUMMARY")]
    assert proc.returncode == 0, failures[:8000] or out[-4000:]
    assert re.search(r"Tested: 6", out), out[-2000:]


def test_docs_page_renders_in_headless_chromium(server, tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "chromium missing: scripts/install_chromium.sh (make test runs it)"
    page = requests.get(server.url + "/", timeout=10)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "//" not in re.sub(r"<!DOCTYPE[^>]*>", "", page.text.split("<script>")[0]), \
        "assets must be served by the service, never from another host"
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
              "--window-size=1280,1000", "--virtual-time-budget=15000"]
    dom = subprocess.run([*common, "--dump-dom", server.url + "/"],
                         capture_output=True, text=True, timeout=120).stdout
    assert "swagger-ui" in dom and "opblock" in dom, dom[:500]
    assert "/v1/linkrecommendations/{project}/{domain}/{page_title}" in dom
    shot = REPO / "var" / "service-docs.png"
    shot.parent.mkdir(exist_ok=True)
    subprocess.run([*common, f"--screenshot={shot}", server.url + "/"],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_datasets_from_mysql_tables_answer_the_same(ltg_model, en_model, mediawiki, ltg,
                                                    mysql_url, tmp_path):
    """model_datasets: store: the worker reads anchors etc. from the tables `model load`
    wrote (the model directory has no SQLite dataset); the answers do not change."""
    import shutil

    import pymysql

    from model.load import load

    db = f"{mysql_url}_svc"
    name = db.rpartition("/")[2]
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        load(ltg_model, db)
        bare = tmp_path / "ltg-without-sqlite"
        shutil.copytree(ltg_model, bare, ignore=shutil.ignore_patterns("*.sqlite"))
        cfg = service_config(bare, en_model, mediawiki)
        cfg["store"] = {"type": "mysql", "url": db}
        cfg["wikis"]["ltgwiki"]["model_datasets"] = "store"
        articles = [p for p in pages(LTG_DUMP) if p.namespace == 0 and not p.redirect][:10]
        with Gunicorn(cfg, workers=1) as g:
            for page in articles:
                got = requests.post(url(g, "ltgwiki", page.title), params={"threshold": 0.2},
                                    json={"wikitext": page.text, "revid": page.rev_id,
                                          "pageid": page.page_id}, timeout=30)
                assert got.status_code == 200, got.text
                assert got.json() == recommend(ltg, page.text, title=page.title,
                                               pageid=page.page_id, revid=page.rev_id,
                                               threshold=0.2)
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()

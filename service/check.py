"""``python -m service check URL``: run every ``x-amples`` stanza of the served spec.

What Wikimedia's service-checker does: read ``URL/openapi.json``, send each stanza's request
(path params, query, JSON body, headers) and compare the answer with the stanza's expected
status, headers and body. Expected bodies are partial: every listed field must be there and
match; a string written ``/regex/`` is searched in the value (numbers as their JSON text).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from model.exitcodes import ExitCode

METHODS = ("get", "post", "put", "delete", "patch")


@dataclass(frozen=True)
class Outcome:
    method: str
    path: str
    title: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def match(expected: Any, actual: Any, where: str = "body") -> list[str]:
    """Why ``actual`` does not match the stanza's ``expected`` (empty when it does)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {json.dumps(actual)[:80]}"]
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing")
            else:
                out += match(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return [f"{where}: expected a list of at least {len(expected)} items"]
        return [p for i, v in enumerate(expected) for p in match(v, actual[i], f"{where}[{i}]")]
    if isinstance(expected, str) and len(expected) >= 2 and expected[0] == expected[-1] == "/":
        text = actual if isinstance(actual, str) else json.dumps(actual)
        if re.search(expected[1:-1], text) is None:
            return [f"{where}: {text[:80]!r} does not match {expected}"]
        return []
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)[:80]}"]
    return []


def run_stanza(base: str, path: str, method: str, stanza: dict,
               http: requests.Session, timeout: float) -> Outcome:
    req = stanza.get("request") or {}
    url_path = path
    for name, value in (req.get("params") or {}).items():
        url_path = url_path.replace("{" + name + "}", quote(str(value), safe=""))
    kwargs: dict[str, Any] = {"params": req.get("query") or None,
                              "headers": req.get("headers") or None, "timeout": timeout}
    if "body" in req:
        kwargs["json"] = req["body"]
    title = stanza.get("title", "")
    try:
        resp = http.request(method.upper(), base + url_path, **kwargs)
    except requests.RequestException as e:
        return Outcome(method, path, title, (f"request failed: {type(e).__name__}",))
    want = stanza.get("response") or {}
    problems: list[str] = []
    if "status" in want and resp.status_code != int(want["status"]):
        problems.append(f"status: expected {want['status']}, got {resp.status_code}")
    for name, value in (want.get("headers") or {}).items():
        problems += match(value, resp.headers.get(name), f"header {name}") \
            if name in resp.headers else [f"header {name}: missing"]
    if "body" in want:
        try:
            body = resp.json()
        except ValueError:
            problems.append(f"body: not JSON ({resp.text[:60]!r})")
        else:
            problems += match(want["body"], body)
    return Outcome(method, path, title, tuple(problems))


def check(url: str, timeout: float = 30.0) -> tuple[list[Outcome], str | None]:
    """All stanzas' outcomes, or an error when the spec itself cannot be read."""
    base = url.rstrip("/")
    http = requests.Session()
    http.headers["User-Agent"] = "addlink-service-check/0.1"
    try:
        spec = http.get(base + "/openapi.json", timeout=timeout).json()
    except (requests.RequestException, ValueError) as e:
        return [], f"{base}/openapi.json: cannot read the spec ({type(e).__name__})"
    outcomes = []
    for path, item in (spec.get("paths") or {}).items():
        for method in METHODS:
            for stanza in (item.get(method) or {}).get("x-amples") or []:
                outcomes.append(run_stanza(base, path, method, stanza, http, timeout))
    return outcomes, None


def main(url: str, timeout: float = 30.0) -> int:
    if not url.startswith(("http://", "https://")):
        print(f"check: {url!r} is not an http(s) URL", file=sys.stderr)
        return ExitCode.USAGE
    outcomes, error = check(url, timeout)
    if error:
        print(f"check: {error}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    for o in outcomes:
        status = "ok  " if o.ok else "FAIL"
        print(f"{status} {o.method.upper():4} {o.path} - {o.title}"
              + "".join(f"\n       {p}" for p in o.problems))
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    if not outcomes:
        print("check: the spec has no x-amples", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.FAILURE if failed else ExitCode.OK

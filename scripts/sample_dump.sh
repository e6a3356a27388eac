#!/usr/bin/env bash
# Prints the path of the English sample dump. Uses ../shared/data when present; otherwise
# takes the same file out of the gensim==4.4.0 wheel on PyPI (once, into $1/sample).
set -euo pipefail
var=${1:-var}
here=$(cd "$(dirname "$0")/.." && pwd)
shared="$here/../shared/data/dumps/enwiki-20160501-sample.xml.bz2"
if [[ -f "$shared" ]]; then echo "$shared"; exit 0; fi
out="$var/sample/enwiki-20160501-sample.xml.bz2"
if [[ ! -f "$out" ]]; then
  mkdir -p "$var/sample"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" gensim==4.4.0 >&2
  python3 - "$tmp" "$out" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/gensim-4.4.0-*.whl")[0]
name = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read(name))
PY
  rm -rf "$tmp"
fi
echo "$out"

#!/bin/bash
# Runs the same command line through docker CLI 28 and berth against fake.py
# and compares stdout, stderr (docker -> berth), exit code and the requests.
#   D=/tmp/cvd; python3 routes.py > $D/routes.json
#   python3 fake.py $D/d.sock $D/log.jsonl $D/routes.json &      (FAKE_API=1.50 for a 1.50 daemon)
#   D=$D BERTH=target/debug/berth ./cmp.sh network ls -q
# Go's JSON encoder ends request bodies with "\n"; berth's do not; that is ignored.
D=${D:-/tmp/cvd}; S=${S:-d}; BERTH=${BERTH:-berth}
run() { rm -f $D/log.jsonl; "$@" > $D/o.$T 2> $D/e.$T < ${STDIN:-/dev/null}; echo $? > $D/rc.$T
  python3 - "$D/log.jsonl" > $D/r.$T <<'PY'
import json, sys
try:
    for l in open(sys.argv[1]):
        r = json.loads(l)
        if not r["p"].endswith("/_ping"):
            print(r["m"], r["p"], r["b"].rstrip("\n"))
except FileNotFoundError:
    pass
PY
}
T=d run env DOCKER_HOST=unix://$D/$S.sock docker "$@"
T=b run env BERTH_HOST=unix://$D/$S.sock "$BERTH" "$@"
sed -i 's/docker /berth /g; s/docker:/berth:/g' $D/e.d $D/o.d
ok=1
for x in o e rc r; do
  if ! cmp -s $D/$x.d $D/$x.b; then ok=0; echo "--- DIFF $x: $*"; diff $D/$x.d $D/$x.b | head -20; fi
done
[ $ok = 1 ] && echo "SAME: $*"

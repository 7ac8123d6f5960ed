"""Imports every server of a simulated fleet (examples/bench_sim_fleet.rs writes one
`seed user password-file` line per server) as its own standalone cluster `s<i>`, through
the API (a CLI process each would take longer than the imports), and waits until every
import job has ended; fails if any failed.
Usage: python3 bench/import_fleet.py PORT TOKEN_FILE FLEET_FILE"""
import http.client
import json
import sys
import time

port, token, fleet = int(sys.argv[1]), open(sys.argv[2]).read().strip(), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
for i, line in enumerate(open(fleet).read().split("\n")):
    if not line.strip():
        continue
    seed, user, pwfile = line.split()
    body = {"name": f"s{i}", "seed": seed, "db_user": user, "db_password": open(pwfile).read().strip()}
    conn.request("POST", "/api/v1/clusters/import", body=json.dumps(body), headers=h)
    r = conn.getresponse(); r.read()
    assert r.status == 202, (r.status, line)
deadline = time.time() + 600
while time.time() < deadline:
    conn.request("GET", "/api/v1/jobs?state=queued", headers=h); q = json.loads(conn.getresponse().read())
    conn.request("GET", "/api/v1/jobs?state=running", headers=h); r = json.loads(conn.getresponse().read())
    if not q and not r:
        break
    time.sleep(1)
conn.request("GET", "/api/v1/jobs?state=failed", headers=h)
failed = json.loads(conn.getresponse().read())
assert not failed, f"{len(failed)} imports failed: {failed[:1]}"

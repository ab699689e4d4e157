#!/usr/bin/env python3
"""Builds routes.json for fake.py from the captured daemon answers in
/work/shared/reference/api-captures (28-network.log, 29-port.log)."""
import json, sys
L = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/reference/api-captures"
def line(f, n):
    return json.loads(open(f"{L}/{f}").read().splitlines()[n - 1].strip())
nets = line("28-network.log", 285); net1 = line("28-network.log", 346)
ctr1 = line("29-port.log", 143); ctr2 = line("29-port.log", 268)
ps = line("29-port.log", 174) + line("29-port.log", 299)
routes = [
    {"m": "GET", "p": r"/networks(\?.*)?", "b": nets},
    {"m": "GET", "p": r"/networks/ac-n1", "b": net1},
    {"m": "GET", "p": r"/networks/ac-n2", "b": nets[1]},
    {"m": "GET", "p": r"/networks/bridge", "b": nets[4]},
    {"m": "GET", "p": r"/networks/[^/]+", "s": 404, "b": {"message": "network nosuch not found"}},
    {"m": "DELETE", "p": r"/networks/ac-n1", "s": 204, "b": ""},
    {"m": "DELETE", "p": r"/networks/bridge", "s": 403, "b": {"message": "bridge is a pre-defined network and cannot be removed"}},
    {"m": "DELETE", "p": r"/networks/.*", "s": 404, "b": {"message": "network x not found"}},
    {"m": "POST", "p": r"/networks/create", "s": 201, "b": {"Id": nets[0]["Id"], "Warning": ""}},
    {"m": "POST", "p": r"/networks/prune.*", "b": {"NetworksDeleted": ["ac-n1", "ac-n2"]}},
    {"m": "POST", "p": r"/networks/.*/(dis)?connect", "b": ""},
    {"m": "GET", "p": r"/containers/ac-p1/json", "b": ctr1},
    {"m": "GET", "p": r"/containers/ac-p2/json", "b": ctr2},
    {"m": "GET", "p": r"/containers/json.*", "b": ps},
    {"m": "GET", "p": r"/containers/.*", "s": 404, "b": {"message": "No such container: nosuch"}},
    {"m": "GET", "p": r"/images/.*", "s": 404, "b": {"message": "No such image: nosuch:latest"}},
    {"m": "GET", "p": r"/volumes/.*", "s": 404, "b": {"message": "get nosuch: no such volume"}},
    {"m": "GET", "p": r"/plugins/.*", "s": 404, "b": {"message": "plugin \"nosuch\" not found"}},
]
json.dump(routes, sys.stdout)

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compare the rows stable_table_client printed with `ip -j addr`, field by field.

Usage: unicast_rows.py OUT SECTION FAMILY IP_JSON [--teredo ADDR]
                       [--created-after FILETIME] [--created-before FILETIME]

OUT      the client's output (one JSON object a line)
SECTION  return | callback: the rows after that line
FAMILY   unspec | inet | inet6: the rows must be exactly ip's of that family
IP_JSON  `ip -j addr` taken in the same namespace, with nothing changing between
--teredo ADDR          the table must hold ADDR (the Teredo address ip shows)
--created-after/before its CreationTimeStamp lies in between (FILETIME)

Prints what differs; exits 1 if anything does. The expectations are written
from ip's own words, independently of the library's code.
"""
import argparse
import ipaddress
import json
import sys

FOREVER = 4294967295
IF_TYPES = {"ether": 6, "loopback": 24, "none": 131}
FAMILIES = {"inet": 2, "inet6": 10}


def rows_of(path, section):
    rows, taking = [], False
    with open(path) as f:
        for line in f:
            obj = json.loads(line)
            event = obj.get("event")
            if event == section:
                taking, rows = True, []
            elif event == "row" and taking:
                rows.append(obj)
            elif taking:
                break
    return rows


def ip_rows(path, family):
    out = []
    with open(path) as f:
        links = json.load(f)
    for link in links:
        for a in link.get("addr_info", []):
            if family != "unspec" and a["family"] != family:
                continue
            out.append((link, a))
    return out


def dad_state(a):
    if a.get("dadfailed"):
        return "IpDadStateDuplicate"
    if a.get("tentative"):
        return "IpDadStateTentative"
    if a.get("deprecated"):
        return "IpDadStateDeprecated"
    return "IpDadStatePreferred"


def origins(link, a):
    addr = ipaddress.ip_address(a["local"])
    if addr.is_loopback:
        return "IpPrefixOriginWellKnown", "IpSuffixOriginWellKnown"
    if addr in ipaddress.ip_network("2001::/32") and link["ifname"] == "teredo":
        return "IpPrefixOriginRouterAdvertisement", "IpSuffixOriginLinkLayerAddress"
    if addr.version == 6 and addr.is_link_local:
        eui64 = addr.packed[11:13] == b"\xff\xfe" and not a.get("stable-privacy")
        return ("IpPrefixOriginWellKnown",
                "IpSuffixOriginLinkLayerAddress" if eui64 else "IpSuffixOriginRandom")
    if not a.get("dynamic"):
        return "IpPrefixOriginManual", "IpSuffixOriginManual"
    return None  # not made by this test: not checked


def lifetime_ok(got, want):
    if want == FOREVER:
        return got == FOREVER
    return want - 3 <= got <= want + 1  # ip ran a moment after the table


def expected(link, a):
    index = link["ifindex"]
    if_type = IF_TYPES.get(link.get("link_type"), 1)
    zone = index if a["family"] == "inet6" and a.get("scope") == "link" else 0
    want = {
        "family": FAMILIES[a["family"]],
        "ifindex": index,
        "luid_index": index,
        "if_type": if_type,
        "luid": (if_type << 48) | (index << 24),
        "prefixlen": a["prefixlen"],
        "skip_as_source": 0,
        "dad_state": dad_state(a),
        "sin6_scope_id": zone,
        "scope_id": zone,
    }
    o = origins(link, a)
    if o:
        want["prefix_origin"], want["suffix_origin"] = o
    return want


def compare(rows, ips, args):
    problems = []
    by_key = {}
    for r in rows:
        key = (str(ipaddress.ip_address(r["address"])), r["ifindex"])
        if key in by_key:
            problems.append(f"row {key} twice")
        by_key[key] = r
    seen = set()
    for link, a in ips:
        key = (str(ipaddress.ip_address(a["local"])), link["ifindex"])
        seen.add(key)
        r = by_key.get(key)
        if r is None:
            problems.append(f"ip shows {key[0]} on {link['ifname']}, the table has no row")
            continue
        for field, want in expected(link, a).items():
            if r[field] != want:
                problems.append(f"{key[0]}: {field} is {r[field]}, ip says {want}")
        for field, ipfield in (("valid", "valid_life_time"), ("preferred", "preferred_life_time")):
            if not lifetime_ok(r[field], a[ipfield]):
                problems.append(f"{key[0]}: {field} {r[field]}, ip says {a[ipfield]}")
        if r["created"] <= 0:
            problems.append(f"{key[0]}: no creation time")
    for key in by_key:
        if key not in seen:
            problems.append(f"row {key[0]} (ifindex {key[1]}) is not in ip's list")
    if args.teredo:
        t = str(ipaddress.ip_address(args.teredo))
        hits = [r for r in rows if str(ipaddress.ip_address(r["address"])) == t]
        if not hits:
            problems.append(f"the Teredo address {t} (ip -6 addr) is not in the table")
        for r in hits:
            if args.created_after and r["created"] < args.created_after:
                problems.append(f"{t} created {r['created']}, before {args.created_after}")
            if args.created_before and r["created"] > args.created_before:
                problems.append(f"{t} created {r['created']}, after {args.created_before}")
    return problems


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("section", choices=["return", "callback"])
    p.add_argument("family", choices=["unspec", "inet", "inet6"])
    p.add_argument("ip_json")
    p.add_argument("--teredo")
    p.add_argument("--created-after", type=int)
    p.add_argument("--created-before", type=int)
    args = p.parse_args()
    rows = rows_of(args.out, args.section)
    ips = ip_rows(args.ip_json, args.family)
    problems = compare(rows, ips, args)
    if not rows:
        problems.append(f"no rows after the {args.section} line")
    for msg in problems:
        print(msg)
    if problems:
        return 1
    print(f"{len(rows)} rows match ip -j addr field by field")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs the scim2-tester checks against an org-mesh SCIM endpoint.

Usage: check.py BASE_URL TOKEN

Prints every result and exits non-zero when any result is ERROR or CRITICAL,
or when the CRUD and PATCH checks did not run: scim2-tester skips them
quietly when discovery fails, which would otherwise look like a pass.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

# Each of these groups must have at least one check that actually ran.
REQUIRED_TAGS = [
    "crud:create",
    "crud:read",
    "crud:update",
    "crud:delete",
    "patch:add",
    "patch:remove",
    "patch:replace",
]
FAILING = {Status.ERROR, Status.CRITICAL}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, token = sys.argv[1], sys.argv[2]
    http = Client(
        base_url=base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )
    client = SyncSCIMClient(http)
    results = check_server(client)

    failures = 0
    ran_by_tag = {tag: 0 for tag in REQUIRED_TAGS}
    counts: dict[str, int] = {}
    for result in results:
        status = result.status.name
        counts[status] = counts.get(status, 0) + 1
        where = f" [{result.resource_type}]" if result.resource_type else ""
        print(f"{status:10} {result.title}{where}: {result.reason or ''}")
        if result.status in FAILING:
            failures += 1
            if result.data is not None:
                print(f"           data: {result.data!r}"[:2000])
                error = result.data.get("error") if isinstance(result.data, dict) else None
                for note in getattr(error, "__notes__", []):
                    print(f"           note: {note}"[:2000])
        if result.status != Status.SKIPPED:
            for tag in REQUIRED_TAGS:
                if tag in result.tags:
                    ran_by_tag[tag] += 1

    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"scim2-tester: {len(results)} results ({summary})")
    missing = [tag for tag, n in ran_by_tag.items() if n == 0]
    if missing:
        print(f"scim2-tester did not run the checks tagged {', '.join(missing)}")
        return 1
    if failures:
        print(f"scim2-tester found {failures} ERROR or CRITICAL results")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

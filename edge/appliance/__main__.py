"""`python -m edge.appliance provision | health | enable-role ROLE`."""

from __future__ import annotations

import sys

from edge.appliance import health, provision


def main(argv: list[str]) -> int:
    match argv:
        case ["provision"]:
            status = provision.run()
            if status["ok"]:
                print(f"bacedge-appliance: provisioned from {status['source']}", flush=True)
            else:
                print(f"bacedge-appliance: provisioning degraded: {status['problem']}", flush=True)
            return 0  # a bad file must not fail the boot; the health line reports it
        case ["health"]:
            return health.main()
        case ["health", seconds]:
            return health.main(float(seconds))
        case ["enable-role", role] if role in provision.ROLES:
            provision.enable_role(role)
            return 0
    print(
        "usage: python -m edge.appliance provision | health [SECONDS] | enable-role ROLE",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

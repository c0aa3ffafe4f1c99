"""`python -m tests.ops.run_trilog ARGS`: the trilog CLI with the operator commands,
whether or not broker/cli.py registers them itself yet."""

import sys

from broker import cli
from broker.cli_ops import register

if not any(group.name == "cluster" for group in cli.app.registered_groups):
    register(cli.app)

if __name__ == "__main__":
    sys.argv[0] = "trilog"
    cli.main()

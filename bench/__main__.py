"""``python -m bench <benchmark> [options]``: the command line of the benchmarks."""
import argparse
import sys

from bench import generate, importing, lists, records, startup, throughput
from bench.common import BenchError

BENCHMARKS = {"generate": generate, "lists": lists, "records": records, "importing": importing, "throughput": throughput,
              "startup": startup}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks of the CRM core (see bench/README.md).")
    commands = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, module in BENCHMARKS.items():
        sub = commands.add_parser(name, help=module.__doc__.strip().splitlines()[0],
                                  description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
    args = parser.parse_args(argv)
    try:
        return BENCHMARKS[args.benchmark].run(args) or 0
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``agentwatch`` command (also ``python -m agentwatch``): ``report [DIR]`` and ``doctor``."""

from __future__ import annotations

import argparse
import sys


def _report(args: argparse.Namespace) -> int:
    from agentwatch.report import render

    directory = args.directory
    if directory is None:
        from agentwatch.distro.settings import settings

        directory = settings().file_dir  # where AGENTWATCH_EXPORT=local wrote
    try:
        text = render(directory, traces=args.traces, logs=args.logs, color=args.color or sys.stdout.isatty())
    except FileNotFoundError as error:
        print(f"agentwatch report: {error}", file=sys.stderr)
        return 2
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `agentwatch report | head`: the reader had enough
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from agentwatch.doctor import diagnose

    found = diagnose(check_endpoints=not args.no_check)
    print(found.as_json(args.all) if args.json else found.text(args.all))
    # A deploy pipeline can gate on it: 1 when a problem was found (bad value, unknown exporter,
    # protocol/port mix-up, unreachable endpoint).
    return 0 if found.ok else 1


def main(argv: list[str] | None = None) -> int:
    from agentwatch.version import __version__

    parser = argparse.ArgumentParser(prog="agentwatch", description="agentwatch: OpenTelemetry for AI-agent services")
    parser.add_argument("--version", action="version", version=f"agentwatch {__version__}")
    commands = parser.add_subparsers(dest="command")

    report = commands.add_parser("report", help="render the agentwatch_file output of a run (AGENTWATCH_EXPORT=local) in the terminal")
    report.add_argument("directory", nargs="?", default=None,
                        help="the AGENTWATCH_FILE_DIR of the run (default: AGENTWATCH_FILE_DIR's value)")
    report.add_argument("--traces", type=int, default=5, help="how many recent traces to show (default 5)")
    report.add_argument("--logs", type=int, default=15, help="how many recent log records to show (default 15)")
    report.add_argument("--color", action="store_true", help="force ANSI colours")
    report.set_defaults(func=_report)

    doctor = commands.add_parser(
        "doctor", help="print the effective configuration and check the endpoints (exit 1 on a problem)")
    doctor.add_argument("--no-check", action="store_true", help="do not try to connect to the endpoints")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--all", action="store_true", help="list every variable with its default, not only those set")
    doctor.set_defaults(func=_doctor)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""The ``agentwatch`` command: ``report DIR`` and ``doctor``."""

from __future__ import annotations

import argparse
import sys


def _report(args: argparse.Namespace) -> int:
    from agentwatch.report import render

    try:
        text = render(args.directory, traces=args.traces, logs=args.logs, color=args.color or sys.stdout.isatty())
    except FileNotFoundError as error:
        print(f"agentwatch report: {error}", file=sys.stderr)
        return 2
    print(text)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from agentwatch.doctor import run

    print(run(check_endpoints=not args.no_check))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentwatch", description="agentwatch: OpenTelemetry for AI-agent services")
    commands = parser.add_subparsers(dest="command", required=True)

    report = commands.add_parser("report", help="render the otlp_json_file output of a run in the terminal")
    report.add_argument("directory", help="the AGENTWATCH_FILE_DIR of the run")
    report.add_argument("--traces", type=int, default=5, help="how many recent traces to show (default 5)")
    report.add_argument("--logs", type=int, default=15, help="how many recent log records to show (default 15)")
    report.add_argument("--color", action="store_true", help="force ANSI colours")
    report.set_defaults(func=_report)

    doctor = commands.add_parser("doctor", help="print the effective configuration and check the endpoints")
    doctor.add_argument("--no-check", action="store_true", help="do not try to connect to the endpoints")
    doctor.set_defaults(func=_doctor)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

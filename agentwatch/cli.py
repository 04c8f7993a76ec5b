"""The ``agentwatch`` command (also ``python -m agentwatch``): ``report [DIR]``, ``doctor`` and ``prepare``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys


def _use_color(args: argparse.Namespace) -> bool:
    """``--color`` / ``--no-color`` win; else colours only on a terminal, without ``NO_COLOR``
    (https://no-color.org: any non-empty value) and not on ``TERM=dumb``."""
    if args.color or args.no_color:
        return bool(args.color)
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def _width(args: argparse.Namespace) -> int:
    """Columns to fit: ``--width``, else ``COLUMNS`` or the terminal's width; no limit into a pipe or file."""
    if args.width is not None:
        return max(0, args.width)
    columns = os.environ.get("COLUMNS", "")
    if not (columns.strip().isdigit() and int(columns) > 0) and not sys.stdout.isatty():
        return 0  # `agentwatch report > file`: keep whole lines
    return max(40, shutil.get_terminal_size((100, 24)).columns)  # reads COLUMNS first


def _report(args: argparse.Namespace) -> int:
    from agentwatch.report import render, render_html

    directory = args.directory
    if directory is None:
        from agentwatch.distro.settings import settings

        directory = settings().file_dir  # where AGENTWATCH_EXPORT=local wrote
    try:
        if args.html:
            page = render_html(directory, traces=args.traces if args.traces is not None else 200,
                               logs=args.logs if args.logs is not None else 50)
            try:
                with open(args.html, "w", encoding="utf-8") as handle:
                    handle.write(page)
            except OSError as error:
                print(f"agentwatch report: cannot write {args.html!r}: {error}", file=sys.stderr)
                return 2
            print(f"agentwatch report: wrote {os.path.abspath(args.html)}")
            return 0
        text = render(directory, traces=args.traces if args.traces is not None else 5,
                      logs=args.logs if args.logs is not None else 15, color=_use_color(args), width=_width(args))
    except FileNotFoundError as error:
        print(f"agentwatch report: {error}", file=sys.stderr)
        return 2
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `agentwatch report | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from agentwatch.doctor import diagnose

    found = diagnose(check_endpoints=not args.no_check)
    print(found.as_json(args.all) if args.json else found.text(args.all))
    # A deploy pipeline can gate on it: 1 when a problem was found (bad value, unknown exporter,
    # protocol/port mix-up, unreachable endpoint).
    return 0 if found.ok else 1


def _prepare(args: argparse.Namespace) -> int:
    """Compile and keep what a start would compile: the scrubber's hint database, in AGENTWATCH_CACHE_DIR.
    For an image build, run as the user the app runs as; exit 1 when it cannot be kept."""
    from agentwatch.distro.scrub import hint_store, scrubber_for
    from agentwatch.distro.settings import load_settings

    settings = load_settings()
    scrubber = scrubber_for(settings)
    directory = settings.scrub.cache_dir
    if scrubber is None or scrubber.engine_name != "hyperscan":
        print("agentwatch prepare: the scrubber's hint engine does not run here (AGENTWATCH_SCRUB, "
              "AGENTWATCH_SCRUB_ENGINE, or no hyperscan package): nothing to keep")
        return 0
    if directory is None:
        print("agentwatch prepare: AGENTWATCH_CACHE_DIR=off: nothing can be kept", file=sys.stderr)
        return 1
    kept = scrubber.hint_database  # this configuration's file: a database of another one does not count
    if kept is None or not kept.is_file():
        problem = hint_store.directory_problem(directory)
        print(f"agentwatch prepare: the hint database could not be kept in {directory}"
              + (f", which {problem}" if problem else ""), file=sys.stderr)
        return 1
    print(f"agentwatch prepare: hint database kept in {directory} ({kept.name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    from agentwatch.version import __version__

    parser = argparse.ArgumentParser(prog="agentwatch", description="agentwatch: OpenTelemetry for AI-agent services")
    parser.add_argument("--version", action="version", version=f"agentwatch {__version__}")
    commands = parser.add_subparsers(dest="command")

    report = commands.add_parser(
        "report", help="render the agentwatch_file output of a run (AGENTWATCH_EXPORT=local) in the terminal or as HTML")
    report.add_argument("directory", nargs="?", default=None,
                        help="the AGENTWATCH_FILE_DIR of the run (default: AGENTWATCH_FILE_DIR's value)")
    report.add_argument("--traces", type=int, default=None,
                        help="how many recent traces to show (default 5; 200 with --html)")
    report.add_argument("--logs", type=int, default=None,
                        help="how many recent log records to show (default 15; 50 with --html)")
    report.add_argument("--html", metavar="FILE", default=None,
                        help="write one self-contained HTML page (no network needed to view it) to FILE instead")
    report.add_argument("--width", type=int, default=None,
                        help="cut lines to this many columns (default: COLUMNS or the terminal's width; "
                             "no limit when writing to a pipe or file; 0: no limit)")
    colors = report.add_mutually_exclusive_group()
    colors.add_argument("--color", action="store_true", help="force ANSI colours (even with NO_COLOR or into a pipe)")
    colors.add_argument("--no-color", action="store_true", help="no ANSI colours (as NO_COLOR=1 does)")
    report.set_defaults(func=_report)

    doctor = commands.add_parser(
        "doctor", help="print the effective configuration and check the endpoints (exit 1 on a problem)")
    doctor.add_argument("--no-check", action="store_true", help="do not try to connect to the endpoints")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--all", action="store_true", help="list every variable with its default, not only those set")
    doctor.set_defaults(func=_doctor)

    prepare = commands.add_parser(
        "prepare", help="compile and keep what a start would compile (the scrubber's hint database, in "
                        "AGENTWATCH_CACHE_DIR): an image build step, run as the app's user; exit 1 if it cannot be kept")
    prepare.set_defaults(func=_prepare)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

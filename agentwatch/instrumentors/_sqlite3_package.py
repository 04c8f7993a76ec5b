"""What agentwatch's sqlite3 instrumentor needs (``instrumentation_dependencies()``): the stock
instrumentation it extends, an extra of agentwatch (``agentwatch[sqlite3]``). sqlite3 itself is in
the stdlib. Its own module so that both implementations read it without importing each other."""

_instruments = ("opentelemetry-instrumentation-sqlite3 >= 0.65b0, < 1",)

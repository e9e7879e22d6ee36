"""Following child processes: the link a child reads (link.py), its monitor's outlet
and reports (child.py, reporter.py), the hooks that see it leave (exithooks.py),
what goes over the report socket (wire.py), and, in the program's monitor, the part
that follows them (follow.py), its report socket (inbox.py) and its watch on them
(watch.py)."""

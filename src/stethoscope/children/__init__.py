"""Following child processes: the link a child reads (link.py), its monitor's outlet
and reports (child.py, reporter.py), the hooks that see it leave (exithooks.py),
and, in the program's monitor, the part that follows them (follow.py, watch.py)."""
